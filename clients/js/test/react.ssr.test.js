// Server rendering: renderToString with initial data renders it, with no window and
// no network (fetch and EventSource throw if anything touches them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";

import { createSharedStateClient } from "../client.js";
import { useSharedState } from "../react.js";
import { makeState } from "./fakes.js";

const touched = [];
function forbiddenFetch(url) {
  touched.push(`fetch ${url}`);
  throw new Error("a server render must not fetch");
}
class ForbiddenEventSource {
  constructor(url) {
    touched.push(`EventSource ${url}`);
    throw new Error("a server render must not open a stream");
  }
}
// Also the defaults the client would fall back on.
globalThis.fetch = forbiddenFetch;
globalThis.EventSource = ForbiddenEventSource;

function Page(options) {
  const { state, loading, error, status, client, getWorkspace } = useSharedState(options);
  if (loading) return h("p", null, "Loading...");
  return h(
    "main",
    null,
    h("h1", null, `Model: ${state.settings.llm.model}`),
    error ? h("p", { role: "alert" }, error) : null,
    h("ul", null, state.workspaces.map((w) => h("li", { key: w.id }, w.name))),
    h("p", null, `first workspace: ${getWorkspace("research")?.name}`),
    h("p", null, `connection: ${status.connection}, client: ${client === null ? "none" : "given"}`),
  );
}

test("there is no window in this process", () => {
  assert.equal(typeof window, "undefined");
  assert.equal(typeof document, "undefined");
});

test("renderToString with initialState renders the data and touches no network", () => {
  const html = renderToString(h(Page, { initialState: makeState(), baseUrl: "http://127.0.0.1:8080" }));
  assert.match(html, /Model: gpt-4o/);
  assert.match(html, /<li>Research<\/li><li>Ops<\/li>/);
  assert.match(html, /connection: idle, client: none/);
  assert.doesNotMatch(html, /Loading/);
  assert.deepEqual(touched, []);
});

test("a selector applies to the initial state on the server too", () => {
  function Model() {
    const { state } = useSharedState({ initialState: makeState(), select: (s) => s.settings.llm.model });
    return h("b", null, state);
  }
  assert.equal(renderToString(h(Model)), "<b>gpt-4o</b>");
  assert.deepEqual(touched, []);
});

test("without initial data the server renders the loading state", () => {
  assert.equal(renderToString(h(Page, {})), "<p>Loading...</p>");
  assert.deepEqual(touched, []);
});

test("a client passed in renders its server snapshot and is not started", () => {
  const client = createSharedStateClient({ initialState: makeState({ version: 5 }), fetch: forbiddenFetch });
  const html = renderToString(h(Page, { client }));
  assert.match(html, /Model: gpt-4o/);
  assert.match(html, /client: given/);
  assert.equal(client.getStatus().connection, "idle");
  assert.deepEqual(touched, []);
  client.close();
});
