// A component written for the BizzyPerson design's `useSharedState` hook (axios
// polling), kept as it was: only the import of the hook points at react.js, and its
// JSX is spelled as createElement calls because the package has no build step. The
// tests render it unchanged against the new hook.
import React, { useState } from "react";
import { useSharedState } from "../../react.js";

const h = React.createElement;

export default function SharedStatePanel() {
  const { state, loading, error, syncState, updateLLMSettings, getWorkspace } = useSharedState();
  const [saving, setSaving] = useState(false);

  const handleSubmit = async (event) => {
    event.preventDefault();
    const model = event.target.elements.model.value;
    setSaving(true);
    try {
      await updateLLMSettings({ model });
    } catch (err) {
      // the hook has set `error`; the panel shows it
    } finally {
      setSaving(false);
    }
  };

  const general = getWorkspace("general");

  return h(
    "div",
    { className: "shared-state-panel" },
    h("h2", null, "Shared state"),
    error && h("div", { className: "error", role: "alert" }, error),
    loading
      ? h("p", null, "Loading...")
      : h(
          "div",
          null,
          h("p", { className: "user" }, `Signed in as ${state.user ? state.user.username : "nobody"}`),
          h("p", { className: "model" }, `Model: ${state.settings.llm.provider} / ${state.settings.llm.model}`),
          h("p", { className: "theme" }, `Theme: ${state.settings.ui.theme}`),
          general && h("p", { className: "general" }, `General workspace: ${general.name}`),
          h(
            "ul",
            { className: "workspaces" },
            state.workspaces.map((workspace) => h("li", { key: workspace.id }, workspace.name)),
          ),
          h(
            "form",
            { onSubmit: handleSubmit },
            h("label", { htmlFor: "model" }, "Model"),
            h("input", { id: "model", name: "model", defaultValue: state.settings.llm.model }),
            h("button", { type: "submit", disabled: saving }, saving ? "Saving..." : "Save"),
          ),
          h("button", { type: "button", className: "sync", onClick: () => syncState() }, "Sync now"),
        ),
  );
}
