// A component written for the BizzyPerson hook (test/legacy/) renders unchanged on the
// new hook, rendered as a page renders it (no act(): React schedules itself, the test
// watches the DOM): the default client over the global fetch, no "Loading..." after the
// first state, live updates, a write through its form, and the service's sentence on a
// failed one.
import { h, mount } from "./react-support.js";
import { test } from "node:test";
import assert from "node:assert/strict";

import SharedStatePanel from "./legacy/SharedStatePanel.js";
import { FakeService, makeState, snapshotEvent, until } from "./fakes.js";

globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const $ = (container, selector) => container.querySelector(selector);

/** A fake service behind the global fetch, as the old component calls the hook without options. */
function serveGlobally(state) {
  const service = new FakeService(state);
  const saved = globalThis.fetch;
  globalThis.fetch = service.fetch;
  return { service, restore: () => (globalThis.fetch = saved) };
}

test("the old panel renders unchanged: loading once, then the state, live, and never Loading... again", async () => {
  const state = makeState({
    workspaces: [
      { id: 1, name: "General", slug: "general" },
      { id: 2, name: "Research", slug: "research" },
    ],
  });
  const { service, restore } = serveGlobally(state);
  const streamOpened = service.nextStream();
  const page = mount(h(SharedStatePanel));
  try {
    await until(() => page.text().includes("Loading..."), "the loading state");
    const stream = await streamOpened;
    assert.equal(stream.request.path, "/api/shared-state/events", "the default client: same origin");
    stream.send("snapshot", snapshotEvent(service.state));
    await until(() => page.text().includes("Model:"), "the first state");
    assert.equal($(page.container, ".user").textContent, "Signed in as ada");
    assert.equal($(page.container, ".model").textContent, "Model: openai / gpt-4o");
    assert.equal($(page.container, ".general").textContent, "General workspace: General");
    assert.deepEqual([...page.container.querySelectorAll(".workspaces li")].map((li) => li.textContent), ["General", "Research"]);
    const firstState = page.texts.length;

    stream.send("changed", service.change((s) => s.workspaces.push({ id: 3, name: "Legal", slug: "legal" })));
    await until(() => page.text().includes("Legal"), "the new workspace");
    stream.send("changed", service.change((s) => (s.settings.ui.theme = "light")));
    await until(() => page.text().includes("Theme: light"), "the new theme");
    stream.send("changed", service.change((s) => (s.settings.llm.model = "gpt-4.1")));
    await until(() => page.text().includes("gpt-4.1"), "the new model");

    assert.ok(page.texts.slice(0, firstState).some((text) => text.includes("Loading...")));
    const later = page.texts.slice(firstState);
    assert.ok(later.length >= 3, "the updates were rendered");
    assert.ok(!later.some((text) => text.includes("Loading...")), "no flash of Loading... on updates");
  } finally {
    page.unmount();
    restore();
  }
});

test("the old panel's form writes through the hook and shows the service's detail when it fails", async () => {
  const { service, restore } = serveGlobally(makeState());
  const streamOpened = service.nextStream();
  const page = mount(h(SharedStatePanel));
  try {
    const stream = await streamOpened;
    stream.send("snapshot", snapshotEvent(service.state));
    await until(() => page.text().includes("Model:"), "the first state");
    const firstState = page.texts.length;

    $(page.container, "#model").value = "gpt-4o-mini";
    $(page.container, "button[type=submit]").click();
    await until(() => $(page.container, "button[type=submit]").textContent === "Save" && page.text().includes("gpt-4o-mini"), "the write");
    const post = service.requests.find((r) => r.method === "POST");
    assert.equal(post.path, "/api/shared-state/llm-settings");
    assert.deepEqual(JSON.parse(post.body), { model: "gpt-4o-mini" });
    assert.equal($(page.container, ".error"), null);

    const detail = "The write failed at librechat (HTTP 500); anythingllm was put back.";
    service.writeFailure = { status: 502, body: { detail, code: "upstream_write_failed", results: { anythingllm: "rolled_back", librechat: "failed" } } };
    $(page.container, "#model").value = "gpt-5";
    $(page.container, "button[type=submit]").click();
    await until(() => $(page.container, ".error") !== null, "the error");
    assert.equal($(page.container, ".error").textContent, detail, "{error} renders the service's sentence");
    await until(() => $(page.container, ".model").textContent === "Model: openai / gpt-4o-mini", "the rollback");
    assert.ok(!page.texts.slice(firstState).some((text) => text.includes("Loading...")), "no Loading... around the writes");

    service.writeFailure = null;
    $(page.container, "button.sync").click();
    await until(() => service.requests.some((r) => r.method === "POST" && r.path === "/api/shared-state/sync"), "the sync");
    await until(() => $(page.container, ".error") === null, "the error cleared by a successful call");
  } finally {
    page.unmount();
    restore();
  }
});
