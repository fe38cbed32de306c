// useSharedState over the real client (client.js) and a fake service behind fetch:
// live updates through the event stream, one shared client per options, closed when
// its last component unmounts, writes and their errors as the service answers them.
import { h, hydrate, render, renderOnServer, step } from "./react-support.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { StrictMode, useState } from "react";

import { useSharedState } from "../react.js";
import { FakeService, snapshotEvent, until } from "./fakes.js";

/** Options that point the hook's own client at `service` (no EventSource: fetch streaming). */
const optionsFor = (service, extra = {}) => ({ fetch: service.fetch, EventSource: null, ...extra });

/**
 * Renders `element`, then has the fake service send the snapshot on the stream the
 * client opened. React renders what act() started when act() ends, so the wait is on
 * the client (`clientOf()`, what the component got from the hook), not the page.
 */
async function renderLive(service, element, clientOf) {
  const streamOpened = service.nextStream();
  const view = await render(element);
  const stream = await streamOpened;
  await step(async () => {
    stream.send("snapshot", snapshotEvent(service.state));
    await until(() => clientOf()?.getSnapshot() != null, "the first state");
  });
  return { ...view, stream };
}

/** Sends the `changed` event of `mutate` on `stream` and waits until the client has it. */
async function change(service, stream, client, mutate) {
  const event = service.change(mutate);
  await step(async () => {
    stream.send("changed", event);
    await until(() => client.getSnapshot().version === event.version, `version ${event.version}`);
  });
}

test("a live update re-renders a selector consumer only when its slice changes", async () => {
  const service = new FakeService();
  const options = optionsFor(service);
  let client = null;
  const renders = { model: 0, list: 0 };
  function Model() {
    const result = useSharedState({ ...options, select: (s) => s.settings.llm });
    client = result.client;
    renders.model += 1;
    return h("b", null, result.loading ? "Loading..." : result.state.model);
  }
  function Conversations() {
    const { state, loading } = useSharedState({ ...options, select: (s) => s.conversations });
    renders.list += 1;
    return h("i", null, loading ? "Loading..." : state.map((c) => c.title).join("|"));
  }
  const view = await renderLive(service, h("div", null, h(Model), h(Conversations)), () => client);
  assert.equal(view.text(), "gpt-4oQuarterly plan|Hiring");
  const settled = { ...renders };

  await change(service, view.stream, client, (state) => {
    state.conversations.unshift({ id: "c-3", title: "Budget" });
  });
  assert.equal(view.text(), "gpt-4oBudget|Quarterly plan|Hiring");
  assert.equal(renders.model, settled.model, "the model consumer did not re-render");
  assert.equal(renders.list, settled.list + 1);

  await change(service, view.stream, client, (state) => {
    state.settings.llm.model = "gpt-5";
  });
  assert.equal(view.text(), "gpt-5Budget|Quarterly plan|Hiring");
  assert.equal(renders.model, settled.model + 1);
  assert.equal(renders.list, settled.list + 1, "the conversations consumer did not re-render");
  await view.unmount();
});

test("loading is true only until the first state; live updates never bring it back", async () => {
  const service = new FakeService();
  const loadings = [];
  let client = null;
  function Probe() {
    const result = useSharedState(optionsFor(service));
    client = result.client;
    loadings.push(result.loading);
    return h("p", null, result.loading ? "Loading..." : `v${result.state.version}`);
  }
  const view = await renderLive(service, h(Probe), () => client);
  assert.equal(loadings[0], true);
  const firstReady = loadings.indexOf(false);
  for (let i = 0; i < 3; i++) {
    await change(service, view.stream, client, (state) => {
      state.workspaces.push({ id: 10 + i, name: `W${i}`, slug: `w${i}` });
    });
  }
  assert.equal(view.text(), "v4");
  assert.ok(loadings.slice(firstReady).every((loading) => loading === false), String(loadings));
  await view.unmount();
});

test("components with the same options share one client and one stream; the last to unmount closes it", async () => {
  const service = new FakeService();
  const clients = new Set();
  function Reader({ name }) {
    // a new options object, and a new token function, at every render
    const { state, client } = useSharedState({ ...optionsFor(service), token: () => "secret" });
    if (client) clients.add(client);
    return h("span", null, state ? `${name}:${state.version} ` : "");
  }
  function Page() {
    const [count, setCount] = useState(3);
    Page.setCount = setCount;
    return h("div", null, ...Array.from({ length: count }, (_, i) => h(Reader, { key: i, name: `r${i}` })));
  }
  const view = await renderLive(service, h(Page), () => [...clients][0]);
  assert.equal(view.text(), "r0:1 r1:1 r2:1 ");
  assert.equal(clients.size, 1, "one client for the three components");
  const [client] = clients;
  assert.equal(service.openStreams().length, 1, "one stream");
  assert.equal(service.openStreams()[0].request.headers.get("Authorization"), "Bearer secret");

  await step(() => Page.setCount(1));
  assert.equal(client.getStatus().connection, "live", "still used by one component");
  assert.equal(service.openStreams().length, 1);

  await view.unmount();
  assert.equal(client.getStatus().connection, "closed");
  assert.equal(service.openStreams().length, 0, "nothing left running");
});

test("different sections or base URLs get clients of their own", async () => {
  const service = new FakeService();
  const seen = {};
  function Reader({ name, options }) {
    seen[name] = useSharedState({ ...optionsFor(service), ...options }).client;
    return null;
  }
  const view = await render(
    h(
      "div",
      null,
      h(Reader, { name: "all", options: {} }),
      h(Reader, { name: "settings", options: { sections: ["settings", "user"] } }),
      h(Reader, { name: "settings-again", options: { sections: ["user", "settings"] } }),
      h(Reader, { name: "other", options: { baseUrl: "http://other.test" } }),
    ),
  );
  assert.equal(seen.settings, seen["settings-again"], "the order of sections does not matter");
  assert.equal(new Set([seen.all, seen.settings, seen.other]).size, 3);
  await view.unmount();
  for (const client of Object.values(seen)) assert.equal(client.getStatus().connection, "closed");
});

test("new options move the component to another client and close the one it left", async () => {
  const service = new FakeService();
  let client = null;
  function Reader({ baseUrl }) {
    client = useSharedState({ ...optionsFor(service), baseUrl }).client;
    return null;
  }
  const view = await render(h(Reader, { baseUrl: "http://one.test" }));
  const first = client;
  assert.notEqual(first.getStatus().connection, "closed");
  await view.rerender(h(Reader, { baseUrl: "http://two.test/" }));
  assert.notEqual(client, first);
  assert.equal(first.getStatus().connection, "closed");
  assert.notEqual(client.getStatus().connection, "closed");
  assert.ok(service.requests.some((request) => request.url.startsWith("http://two.test/api/shared-state/events")));
  await view.unmount();
  assert.equal(client.getStatus().connection, "closed");
});

test("under StrictMode the double effects keep one open client", async () => {
  const service = new FakeService();
  const clients = new Set();
  function Probe() {
    const { state, client } = useSharedState(optionsFor(service));
    if (client) clients.add(client);
    return h("p", null, state ? state.settings.llm.model : "Loading...");
  }
  const view = await renderLive(service, h(StrictMode, null, h(Probe)), () => [...clients][0]);
  assert.equal(view.text(), "gpt-4o");
  assert.equal(clients.size, 1);
  const [client] = clients;
  assert.equal(client.getStatus().connection, "live");
  await view.unmount();
  assert.equal(client.getStatus().connection, "closed");
});

test("a write through the hook lands; a refused one rolls back and sets error to the service's detail", async () => {
  const service = new FakeService();
  let result = null;
  let client = null;
  function Probe() {
    result = useSharedState(optionsFor(service));
    client = result.client;
    return h("p", null, result.loading ? "Loading..." : `${result.state.settings.llm.model} ${result.error ?? ""}`);
  }
  const view = await renderLive(service, h(Probe), () => client);

  await step(() => result.updateLLMSettings({ model: "gpt-4.1" }));
  assert.equal(view.text(), "gpt-4.1 ");
  const write = service.requests.find((request) => request.method === "POST");
  assert.deepEqual(JSON.parse(write.body), { model: "gpt-4.1" });

  const detail = "The write failed at librechat; anythingllm was put back.";
  service.writeFailure = {
    status: 502,
    body: { detail, code: "upstream_write_failed", results: { anythingllm: "rolled_back", librechat: "failed" } },
  };
  let rejected = null;
  await step(() =>
    result.updateLLMSettings({ model: "gpt-5" }).catch((error) => {
      rejected = error;
    }),
  );
  assert.equal(rejected.status, 502);
  assert.equal(rejected.code, "upstream_write_failed");
  assert.equal(view.text(), `gpt-4.1 ${detail}`, "rolled back, with the service's sentence");
  assert.equal(result.error, detail);
  assert.equal(result.errorInfo, rejected);
  assert.deepEqual(result.errorInfo.results, { anythingllm: "rolled_back", librechat: "failed" });
  await view.unmount();
});

test("a server-rendered page hydrates without a mismatch or a Loading frame, then goes live", async () => {
  const service = new FakeService();
  const initialState = structuredClone(service.state);
  let client = null;
  const shown = [];
  function Page() {
    const result = useSharedState({ ...optionsFor(service), initialState });
    client = result.client;
    const text = result.loading ? "Loading..." : result.state.settings.llm.model;
    shown.push(text);
    return h("p", null, text);
  }
  const html = await renderOnServer(h(Page));
  assert.equal(html, "<p>gpt-4o</p>");
  assert.equal(service.requests.length, 0, "the server render asked nothing");

  const streamOpened = service.nextStream();
  const view = await hydrate(h(Page), html);
  const stream = await streamOpened;
  assert.equal(view.text(), "gpt-4o");
  await change(service, stream, client, (state) => {
    state.settings.llm.model = "gpt-5";
  });
  assert.equal(view.text(), "gpt-5");
  assert.ok(!shown.includes("Loading..."), String(shown));
  await view.unmount();
  assert.equal(client.getStatus().connection, "closed");
});
