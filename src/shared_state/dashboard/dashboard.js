// The shared-state dashboard: a plain ES module over the service's own JS client.
//
// It renders the client's store (getSnapshot/subscribe): a section is drawn again only
// when its object changed (the store shares unchanged sections' references), and every
// piece of upstream data goes in as text (textContent), never as markup. With an API
// token configured, the first read answers 401: the page then asks for the token and
// keeps it in sessionStorage.

import { createSharedStateClient } from "../api/shared-state/client.js";

const TOKEN_KEY = "shared-state:api-token";
const LOG_LIMIT = 200;
const LIST_LIMIT = 200;
const VALUE_CHARS = 80;
// The service's origin and path prefix, from where this file was served (no trailing /).
const BASE_URL = new URL("../", import.meta.url).href.replace(/\/$/, "");

const $ = (id) => document.getElementById(id);

const CONNECTION_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  polling: "Polling (the event stream is unavailable)",
  paused: "Paused while this tab is hidden",
  offline: "Offline: showing the last state",
  closed: "Closed",
};

let client = null;
let unbind = () => {};
let shown = {};
let lastEvent = null; // the settings/sources last seen in the event log, for its summaries

// --- small DOM helpers (text only) -------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child !== undefined && child !== null) element.append(child);
  }
  return element;
}

function text(value) {
  if (value === undefined || value === null || value === "") return "–";
  const shown = typeof value === "string" ? value : JSON.stringify(value);
  return shown.length > VALUE_CHARS ? `${shown.slice(0, VALUE_CHARS - 1)}…` : shown;
}

function fact(term, value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, text(value)));
}

function group(title) {
  return h("div", {}, h("dt", { class: "group" }, title));
}

function since(iso) {
  if (!iso) return h("span", {}, "never");
  return h("time", { datetime: iso, title: iso, "data-since": iso }, ago(iso));
}

function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return String(iso);
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

function day(iso) {
  // "2026-09-22 15:03" (UTC) from an ISO time; anything else as it came.
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(String(iso));
  return match ? `${match[1]} ${match[2]} UTC` : iso;
}

function tick() {
  for (const element of document.querySelectorAll("time[data-since]")) {
    element.textContent = ago(element.dataset.since);
  }
}

// --- the sections ---------------------------------------------------------------------------

function renderOverview(state) {
  $("version").textContent = String(state.version);
  $("sync-timestamp").replaceChildren(since(state.syncTimestamp));
}

function renderSources(sources) {
  const rows = Object.entries(sources ?? {}).map(([name, source]) =>
    h(
      "tr",
      { "data-source": name },
      h("th", { scope: "row" }, name),
      h("td", {}, h("span", { class: "badge", "data-status": source.status }, source.status)),
      h("td", {}, since(source.lastSuccessAt)),
      h("td", {}, text(source.lastError)),
    ),
  );
  $("sources").tBodies[0].replaceChildren(...rows);
}

function renderUser(user) {
  if (!user) {
    $("user").replaceChildren(h("div", {}, h("dd", {}, "Neither upstream knows the user.")));
    return;
  }
  $("user").replaceChildren(
    fact("Username", user.username),
    fact("Name", user.name),
    fact("Email", user.email),
    fact("Role", user.role),
    fact("AnythingLLM id", user.anythingLLM?.id),
    fact("LibreChat id", user.libreChat?.id),
  );
}

function renderSettings(settings) {
  const { llm = {}, ui = {}, embedding = {}, vectorDb = {} } = settings ?? {};
  $("settings").replaceChildren(
    group("LLM"),
    fact("Provider", llm.provider),
    fact("Model", llm.model),
    fact("Temperature", llm.temperature),
    fact("Max tokens", llm.maxTokens),
    group("UI"),
    fact("Theme", ui.theme),
    fact("Font size", ui.fontSize),
    group("Embedding"),
    fact("Provider", embedding.provider),
    fact("Model", embedding.model),
    group("Vector database"),
    fact("Provider", vectorDb.provider),
  );
  fillForm(llmForm, llm);
  fillForm(uiForm, ui);
}

function renderWorkspaces(workspaces) {
  const items = workspaces ?? [];
  $("workspaces-count").textContent = `(${items.length})`;
  $("workspaces").replaceChildren(
    ...items.slice(0, LIST_LIMIT).map((workspace) =>
      h(
        "li",
        { "data-id": workspace.id },
        h("div", { class: "title" }, text(workspace.name ?? workspace.slug ?? workspace.id)),
        h("div", { class: "meta" }, `slug ${text(workspace.slug)} · id ${text(workspace.id)}`),
      ),
    ),
  );
}

function renderConversations(conversations) {
  const items = conversations ?? [];
  const filter = $("conversation-filter").value.trim().toLowerCase();
  const matching = filter
    ? items.filter((item) => String(item.title ?? "").toLowerCase().includes(filter))
    : items;
  $("conversations-count").textContent = `(${items.length})`;
  const listed = matching.slice(0, LIST_LIMIT);
  $("conversations-shown").textContent =
    matching.length > listed.length
      ? `Showing ${listed.length} of ${matching.length} matching; narrow the filter to see others.`
      : filter
        ? `${matching.length} of ${items.length} match.`
        : "";
  $("conversations").replaceChildren(
    ...listed.map((conversation) =>
      h(
        "li",
        { "data-id": conversation.id },
        h("div", { class: "title" }, text(conversation.title || "(untitled)")),
        h(
          "div",
          { class: "meta" },
          [conversation.model, conversation.endpoint, conversation.updatedAt && `updated ${day(conversation.updatedAt)}`]
            .filter(Boolean)
            .map(text)
            .join(" · ") || `id ${text(conversation.id)}`,
        ),
      ),
    ),
  );
}

const RENDERERS = [
  ["sources", renderSources],
  ["user", renderUser],
  ["settings", renderSettings],
  ["workspaces", renderWorkspaces],
  ["conversations", renderConversations],
];

function render() {
  if (!client) return;
  renderConnection(client.getStatus());
  if (!client) return; // a 401: the token form took over
  const state = client.getSnapshot();
  if (!state) return;
  $("dashboard").hidden = false;
  if (state !== shown.state) renderOverview(state);
  for (const [section, draw] of RENDERERS) {
    if (state[section] !== shown[section]) draw(state[section]);
    shown[section] = state[section];
  }
  shown.state = state;
}

function renderConnection(status) {
  const element = $("connection");
  const parts = [CONNECTION_TEXT[status.connection] ?? status.connection];
  if (status.stale && status.connection !== "offline") parts.push("(may be out of date)");
  if (status.error && status.connection !== "live") parts.push(`: ${status.error.message}`);
  element.dataset.connection = status.connection;
  element.textContent = parts.join(" ");
  if (status.error?.status === 401) askForToken("The service refused the token; enter it again.");
}

// --- the change log -------------------------------------------------------------------------

function summarize(event) {
  if (event.type === "snapshot") {
    lastEvent = { settings: event.state.settings, sources: event.state.sources };
    return ["snapshot", "the whole state"];
  }
  const changes = event.changes ?? {};
  const parts = [];
  for (const [section, change] of Object.entries(changes)) {
    if (section === "workspaces" || section === "conversations") {
      parts.push(`${section}: ${listSummary(change)}`);
    } else if (section === "settings") {
      const diffs = leafChanges(lastEvent?.settings, change);
      parts.push(`settings: ${diffs.length ? diffs.join(", ") : "updated"}`);
    } else if (section === "sources") {
      const statuses = Object.entries(change ?? {}).map(([name, source]) => `${name} ${source.status}`);
      parts.push(`sources: ${statuses.join(", ")}`);
    } else {
      parts.push(`${section} updated`);
    }
  }
  if (changes.settings) lastEvent = { ...lastEvent, settings: changes.settings };
  return [Object.keys(changes).join(", ") || "nothing", parts.join("; ")];
}

function listSummary({ added = [], updated = [], removed = [] } = {}) {
  const named = (items) => items.slice(0, 3).map((item) => text(item.name ?? item.title ?? item.id));
  const parts = [];
  if (added.length) parts.push(`added ${added.length} (${named(added).join(", ")})`);
  if (updated.length) parts.push(`updated ${updated.length} (${named(updated).join(", ")})`);
  if (removed.length) parts.push(`removed ${removed.length}`);
  return parts.join(", ") || "reordered";
}

function leafChanges(before, after, prefix = "") {
  const diffs = [];
  for (const [key, value] of Object.entries(after ?? {})) {
    const old = before?.[key];
    if (value && typeof value === "object" && !Array.isArray(value)) {
      diffs.push(...leafChanges(old, value, `${prefix}${key}.`));
    } else if (JSON.stringify(old) !== JSON.stringify(value)) {
      diffs.push(`${prefix}${key} ${text(old)} → ${text(value)}`);
    }
  }
  return diffs;
}

function logEvent(event) {
  const [sections, summary] = summarize(event);
  const when = new Date(event.timestamp ?? Date.now());
  const entry = h(
    "li",
    { "data-version": event.version, "data-type": event.type },
    h("span", { class: "version" }, `v${event.version}`),
    h("span", { class: "sections" }, sections),
    h("time", { class: "when", datetime: when.toISOString() }, when.toLocaleTimeString()),
    h("span", { class: "summary" }, summary),
  );
  const log = $("event-log");
  log.prepend(entry);
  while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
}

// --- the forms ------------------------------------------------------------------------------

const llmForm = {
  form: $("llm-form"),
  fields: { provider: "text", model: "text", temperature: "number", maxTokens: "integer" },
  prefix: "llm",
  current: () => client?.getSnapshot()?.settings?.llm ?? {},
  write: (patch) => client.updateLLMSettings(patch),
  saved: (llm) => `Saved: ${llm.provider ?? "–"} / ${llm.model ?? "–"}, temperature ${llm.temperature}, max tokens ${llm.maxTokens}.`,
};

const uiForm = {
  form: $("ui-form"),
  fields: { theme: "text", fontSize: "text" },
  prefix: "ui",
  current: () => client?.getSnapshot()?.settings?.ui ?? {},
  write: (patch) => client.updateUISettings(patch),
  saved: (ui) => `Saved: theme ${ui.theme}, font size ${ui.fontSize}.`,
};

function control(spec, field) {
  return $(`${spec.prefix}-${field}`);
}

function fillForm(spec, values, { force = false } = {}) {
  if (spec.form.dataset.dirty && !force) return; // never overwrite what someone is typing
  for (const field of Object.keys(spec.fields)) {
    const value = values?.[field];
    control(spec, field).value = value === null || value === undefined ? "" : String(value);
  }
  delete spec.form.dataset.dirty;
}

function clearErrors(spec) {
  for (const field of Object.keys(spec.fields)) {
    control(spec, field).removeAttribute("aria-invalid");
    $(`${spec.prefix}-${field}-error`).textContent = "";
  }
}

function showFieldError(spec, field, message) {
  const input = control(spec, field);
  input.setAttribute("aria-invalid", "true");
  const element = $(`${spec.prefix}-${field}-error`);
  element.textContent = element.textContent ? `${element.textContent} ${message}` : message;
}

// The fields whose value differs from the current state, parsed; errors for those that
// cannot be sent at all (an empty or unreadable number).
function patchOf(spec) {
  const patch = {};
  const errors = {};
  const current = spec.current();
  for (const [field, kind] of Object.entries(spec.fields)) {
    const input = control(spec, field);
    const known = current[field] !== null && current[field] !== undefined;
    let value = input.value;
    if (value.trim() === "" && !input.validity.badInput && !known) continue; // still unset
    if (kind !== "text") {
      if (value.trim() === "" || input.validity.badInput) {
        errors[field] = "Enter a number.";
        continue;
      }
      value = Number(value);
    }
    if (value !== current[field]) patch[field] = value;
  }
  return { patch, errors };
}

function showResult(spec, outcome, ...content) {
  const element = $(`${spec.prefix}-result`);
  element.dataset.outcome = outcome;
  element.replaceChildren(...content);
}

function resultsTable(results) {
  return h(
    "table",
    { class: "write-results" },
    h("caption", {}, "Per upstream"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Upstream"), h("th", { scope: "col" }, "Result"))),
    h(
      "tbody",
      {},
      ...Object.entries(results).map(([name, result]) =>
        h(
          "tr",
          { "data-upstream": name },
          h("th", { scope: "row" }, name),
          h("td", {}, h("span", { class: "badge", "data-status": result }, result)),
        ),
      ),
    ),
  );
}

function showWriteError(spec, error) {
  if (Array.isArray(error.detail)) {
    const general = [];
    for (const item of error.detail) {
      const field = Array.isArray(item.loc) ? item.loc[1] : undefined;
      if (field && field in spec.fields) showFieldError(spec, field, item.msg);
      else general.push(item.msg);
    }
    showResult(spec, "error", `Not saved: ${general.join(" ") || "see the fields above."}`);
    return;
  }
  const message = error.code === "version_mismatch"
    ? "Not saved: the settings changed meanwhile; the form now shows them. Try again."
    : `Not saved: ${error.message}`;
  showResult(spec, "error", message, error.results ? resultsTable(error.results) : null);
  if (error.code === "version_mismatch") fillForm(spec, spec.current(), { force: true });
}

async function submit(spec, event) {
  event.preventDefault();
  clearErrors(spec);
  const { patch, errors } = patchOf(spec);
  for (const [field, message] of Object.entries(errors)) showFieldError(spec, field, message);
  if (Object.keys(errors).length) {
    showResult(spec, "error", "Not saved: see the fields above.");
    return;
  }
  if (!Object.keys(patch).length) {
    showResult(spec, "ok", "Nothing to save: these are the current values.");
    return;
  }
  const button = spec.form.querySelector('button[type="submit"]');
  button.disabled = true;
  spec.form.setAttribute("aria-busy", "true");
  showResult(spec, "pending", "Saving…");
  try {
    const section = await spec.write(patch);
    delete spec.form.dataset.dirty;
    fillForm(spec, section, { force: true });
    showResult(spec, "ok", spec.saved(section));
  } catch (error) {
    showWriteError(spec, error);
  } finally {
    button.disabled = false;
    spec.form.removeAttribute("aria-busy");
  }
}

function setUpForm(spec) {
  spec.form.addEventListener("input", () => {
    spec.form.dataset.dirty = "1";
  });
  spec.form.addEventListener("submit", (event) => submit(spec, event));
  spec.form.querySelector("[data-revert]").addEventListener("click", () => {
    clearErrors(spec);
    showResult(spec, "ok", "");
    fillForm(spec, spec.current(), { force: true });
  });
}

// --- sync now -------------------------------------------------------------------------------

async function syncNow() {
  const button = $("sync-now");
  const result = $("sync-result");
  button.disabled = true;
  result.dataset.outcome = "pending";
  result.textContent = "Syncing…";
  try {
    const answer = await client.sync();
    const changed = answer.changed?.length ? `changed: ${answer.changed.join(", ")}` : "nothing changed";
    const failed = Object.entries(answer.sources ?? {})
      .filter(([, source]) => source.status === "stale")
      .map(([name]) => name);
    result.dataset.outcome = failed.length ? "error" : "ok";
    result.textContent =
      `Synced in ${Math.round(answer.durationMs)} ms: version ${answer.version}, ${changed}` +
      (failed.length ? `; ${failed.join(" and ")} did not answer.` : ".");
  } catch (error) {
    result.dataset.outcome = "error";
    result.textContent = `Sync failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// --- the token and the connection -----------------------------------------------------------

function askForToken(message = "") {
  unbind();
  client?.close();
  client = null;
  $("dashboard").hidden = true;
  $("token-panel").hidden = false;
  $("token-error").textContent = message;
  $("token-input").setAttribute("aria-invalid", message ? "true" : "false");
  const connection = $("connection");
  connection.dataset.connection = "idle";
  connection.textContent = "Waiting for the API token";
  $("token-input").focus();
}

async function connect() {
  const token = sessionStorage.getItem(TOKEN_KEY) || undefined;
  // One read first: a 401 means a token is needed, before any stream is opened.
  const probe = createSharedStateClient({ baseUrl: BASE_URL, token, live: false });
  try {
    await probe.getServiceStatus();
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken(token ? "The service refused that token." : "");
      return;
    }
    // Anything else (the service unreachable): the live client keeps trying by itself.
  } finally {
    probe.close();
  }
  $("token-panel").hidden = true;
  shown = {};
  client = createSharedStateClient({ baseUrl: BASE_URL, token });
  const unsubscribe = client.subscribe(render);
  const unlisten = client.onEvent(logEvent);
  unbind = () => {
    unsubscribe();
    unlisten();
    unbind = () => {};
  };
  render();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) {
    $("token-error").textContent = "Enter the token.";
    $("token-input").setAttribute("aria-invalid", "true");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token-input").value = "";
  connect();
});

$("conversation-filter").addEventListener("input", () => {
  renderConversations(client?.getSnapshot()?.conversations);
});
$("sync-now").addEventListener("click", syncNow);
setUpForm(llmForm);
setUpForm(uiForm);
setInterval(tick, 1000);
connect();
