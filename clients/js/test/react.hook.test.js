// useSharedState over a store driven by the test: the return shape, `loading`, `error`,
// the selector's re-render rules, the lookups and their stable identities.
import { act, createFakeStore, h, makeState, render, serviceError } from "./react-support.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { useSharedState } from "../react.js";

/** Renders a probe component; `seen` holds every result it rendered with. */
async function renderProbe(options, read = (result) => result) {
  const seen = [];
  function Probe() {
    const result = useSharedState(options);
    seen.push(read(result));
    return h("p", null, result.loading ? "Loading..." : "ready");
  }
  const view = await render(h(Probe));
  return { ...view, seen, last: () => seen[seen.length - 1] };
}

test("the result has the BizzyPerson hook's members, and errorInfo, status and client", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store }, (result) => ({ ...result }));
  const result = probe.last();
  assert.equal(result.state, store.getSnapshot());
  assert.equal(result.loading, false);
  assert.equal(result.error, null);
  assert.equal(result.errorInfo, null);
  assert.equal(result.status, store.getStatus());
  assert.equal(result.client, store);
  for (const name of ["syncState", "updateLLMSettings", "updateUISettings", "getWorkspace", "getConversation"]) {
    assert.equal(typeof result[name], "function", name);
  }
  await probe.unmount();
});

test("react.d.ts declares exactly the members the hook returns", async () => {
  const types = readFileSync(new URL("../react.d.ts", import.meta.url), "utf8");
  const body = types.match(/export interface SharedStateHookResult<[^>]*> \{\n([\s\S]*?)\n\}/)[1];
  const declared = [...body.matchAll(/^ {2}(\w+)\??[:(]/gm)].map((match) => match[1]).sort();
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store }, (result) => Object.keys(result).sort());
  assert.deepEqual(declared, probe.last());
  await probe.unmount();
});

test("loading is true until the first state and never again on later updates", async () => {
  const store = createFakeStore();
  const probe = await renderProbe({ client: store }, (result) => result.loading);
  assert.equal(probe.text(), "Loading...");
  assert.deepEqual(probe.seen, [true]);
  await act(async () => store.set(makeState()));
  await act(async () => store.set(makeState({ version: 2, conversations: [] })));
  await act(async () => store.setStatus({ connection: "polling" }));
  await act(async () => store.set(makeState({ version: 3 })));
  assert.equal(probe.text(), "ready");
  assert.equal(probe.seen[0], true);
  assert.ok(probe.seen.length >= 3, "it rendered the updates");
  assert.deepEqual(probe.seen.slice(1), probe.seen.slice(1).map(() => false), "no Loading... after the first state");
  await probe.unmount();
});

test("a failed write rejects with the client's error and sets error to the service's detail", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store });
  const failure = serviceError(502, "upstream_write_failed", "LibreChat refused the new model.", {
    anythingllm: "rolled_back",
    librechat: "failed",
  });
  store.nextWrite = failure;
  let rejected = null;
  await act(async () => {
    await probe.last().updateLLMSettings({ model: "gpt-5" }).catch((error) => {
      rejected = error;
    });
  });
  assert.equal(rejected, failure);
  assert.deepEqual(store.calls, [["llm", { model: "gpt-5" }]]);
  assert.equal(probe.last().error, "LibreChat refused the new model.");
  assert.equal(probe.last().errorInfo.code, "upstream_write_failed");
  assert.equal(probe.last().errorInfo.status, 502);
  assert.deepEqual(probe.last().errorInfo.results, { anythingllm: "rolled_back", librechat: "failed" });

  await act(async () => {
    const ui = await probe.last().updateUISettings({ theme: "light" });
    assert.deepEqual(ui, { theme: "light", fontSize: "medium" });
  });
  assert.equal(probe.last().error, null, "a write that succeeds clears the error");
  await probe.unmount();
});

test("a 422 whose detail is FastAPI's list still gives error as a sentence", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store });
  const detail = [{ type: "less_than_equal", loc: ["body", "temperature"], msg: "Input should be less than or equal to 2" }];
  store.nextWrite = serviceError(422, "validation_error", detail);
  await act(async () => {
    await assert.rejects(probe.last().updateLLMSettings({ temperature: 9 }));
  });
  assert.equal(typeof probe.last().error, "string");
  assert.equal(probe.last().error, "The request was not valid.");
  assert.deepEqual(probe.last().errorInfo.detail, detail);
  await probe.unmount();
});

test("the client's connection error shows as error until it clears", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store }, (result) => result.error);
  await act(async () => store.setStatus({ connection: "offline", error: serviceError(0, "network_error", "The service could not be reached.") }));
  assert.equal(probe.last(), "The service could not be reached.");
  await act(async () => store.setStatus({ connection: "live", error: null }));
  assert.equal(probe.last(), null);
  await probe.unmount();
});

test("syncState resolves to the answer of POST /sync", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store });
  let answer;
  await act(async () => {
    answer = await probe.last().syncState();
  });
  assert.deepEqual(answer, { version: 1, changed: [], sources: {}, durationMs: 1 });
  assert.deepEqual(store.calls, [["sync"]]);
  await probe.unmount();
});

test("a selector consumer re-renders only when its slice changes, with an inline selector", async () => {
  const store = createFakeStore({ state: makeState() });
  const renders = [];
  function ModelBadge() {
    const { state } = useSharedState({ client: store, select: (s) => s.settings.llm });
    renders.push(state);
    return h("span", null, state.model);
  }
  const view = await render(h(ModelBadge));
  assert.equal(view.text(), "gpt-4o");
  assert.equal(renders.length, 1);

  const before = store.getSnapshot();
  // a conversation changes; settings keep their reference (the client's structural sharing)
  await act(async () => store.set({ ...before, version: 2, conversations: [{ id: "c-9", title: "New" }] }));
  await act(async () => store.setStatus({ connection: "polling" }));
  assert.equal(renders.length, 1, "no re-render for a conversation or a status change");

  const llm = { ...before.settings.llm, model: "gpt-5" };
  await act(async () => store.set({ ...store.getSnapshot(), version: 3, settings: { ...before.settings, llm } }));
  assert.equal(renders.length, 2);
  assert.equal(renders[1], llm);
  assert.equal(view.text(), "gpt-5");
  await view.unmount();
});

test("an inline selector that builds a new object each call neither loops nor warns", async () => {
  const store = createFakeStore({ state: makeState() });
  let renders = 0;
  function Summary() {
    const { state } = useSharedState({ client: store, select: (s) => ({ model: s.settings.llm.model, count: s.workspaces.length }) });
    renders += 1;
    return h("span", null, `${state.model}/${state.count}`);
  }
  const view = await render(h(Summary));
  assert.equal(view.text(), "gpt-4o/2");
  assert.equal(renders, 1);
  await act(async () => store.set(makeState({ version: 2, workspaces: [] })));
  assert.equal(view.text(), "gpt-4o/0");
  assert.equal(renders, 2);
  await view.unmount();
});

test("isEqual keeps a derived slice, so a new but equal object does not re-render", async () => {
  const store = createFakeStore({ state: makeState() });
  const renders = [];
  const sameNames = (a, b) => a.length === b.length && a.every((name, i) => name === b[i]);
  function Names() {
    const { state } = useSharedState({
      client: store,
      select: (s) => s.workspaces.map((w) => w.name),
      isEqual: sameNames,
    });
    renders.push(state);
    return h("span", null, state.join(", "));
  }
  const view = await render(h(Names));
  const first = renders[0];
  await act(async () => store.set({ ...store.getSnapshot(), version: 2, workspaces: [...store.getSnapshot().workspaces] }));
  assert.equal(renders.length, 1, "equal names, no re-render");
  await view.rerender(h(Names));
  assert.equal(renders.length, 2);
  assert.equal(renders[1], first, "a parent's re-render keeps the same slice object");
  await act(async () => store.set({ ...store.getSnapshot(), version: 3, workspaces: [{ id: 3, name: "Legal", slug: "legal" }] }));
  assert.equal(view.text(), "Legal");
  await view.unmount();
});

test("status re-renders only a component that reads it", async () => {
  const store = createFakeStore({ state: makeState() });
  let plain = 0;
  let watching = 0;
  function Plain() {
    const { state } = useSharedState({ client: store });
    plain += 1;
    return h("span", null, state.version);
  }
  function Watching() {
    const { status } = useSharedState({ client: store });
    watching += 1;
    return h("span", null, status.connection);
  }
  const view = await render(h("div", null, h(Plain), h(Watching)));
  assert.equal(view.text(), "1live");
  await act(async () => store.setStatus({ connection: "polling" }));
  assert.equal(view.text(), "1polling");
  assert.equal(plain, 1);
  assert.equal(watching, 2);
  await view.unmount();
});

test("getWorkspace finds by id or slug, getConversation by id, undefined when absent; both stable", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store, select: (s) => s.settings.ui });
  const { getWorkspace, getConversation } = probe.last();
  assert.equal(getWorkspace(1).name, "Research");
  assert.equal(getWorkspace("1").name, "Research", "an id from a URL is a string");
  assert.equal(getWorkspace("ops").name, "Ops");
  assert.equal(getWorkspace("nope"), undefined);
  assert.equal(getWorkspace(undefined), undefined);
  assert.equal(getConversation("c-2").title, "Hiring");
  assert.equal(getConversation("research"), undefined);
  assert.equal(getConversation("c-404"), undefined);

  await act(async () => store.set(makeState({ version: 2, workspaces: [{ id: 7, name: "Legal", slug: "legal" }] })));
  assert.equal(getWorkspace("legal").id, 7, "the lookup reads the current state");
  assert.equal(getWorkspace(1), undefined);
  await probe.unmount();
});

test("the functions keep their identities across renders", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store }, (result) => ({ ...result }));
  await act(async () => store.set(makeState({ version: 2 })));
  await act(async () => store.set(makeState({ version: 3 })));
  assert.ok(probe.seen.length >= 3);
  const [first, ...later] = probe.seen;
  for (const result of later) {
    for (const name of ["syncState", "updateLLMSettings", "updateUISettings", "getWorkspace", "getConversation"]) {
      assert.equal(result[name], first[name], name);
    }
  }
  await probe.unmount();
});

test("a store passed as client is left open when the component unmounts", async () => {
  const store = createFakeStore({ state: makeState() });
  const probe = await renderProbe({ client: store });
  assert.equal(store.listenerCount(), 1);
  await probe.unmount();
  assert.equal(store.listenerCount(), 0);
  assert.equal(store.closed, false);
});
