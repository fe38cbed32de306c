// Tabs share one stream (fake BroadcastChannel and Web Locks), persist, and close().
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

import { createSharedStateClient } from "../index.js";
import { API, ChannelHub, FakeLocks, FakeService, makeState, snapshotEvent, until } from "./fakes.js";

function tab(service, hub, locks, extra = {}) {
  const doc = new EventTarget();
  doc.visibilityState = extra.visibility ?? "visible";
  const client = createSharedStateClient({
    fetch: service.fetch,
    EventSource: null,
    BroadcastChannel: hub.BroadcastChannel,
    locks,
    document: doc,
    window: new EventTarget(),
    ...extra,
  });
  client.subscribe(() => {});
  return { client, doc };
}

const streamRequests = (service) => service.requests.filter((r) => r.path === `${API}/events`);

test("tabs share one stream: the leader streams, followers apply its events", async () => {
  const service = new FakeService();
  const hub = new ChannelHub();
  const locks = new FakeLocks();
  const first = service.nextStream();
  const a = tab(service, hub, locks);
  const stream = await first;
  const b = tab(service, hub, locks);
  const c = tab(service, hub, locks);
  await until(() => a.client.getStatus().leader, "a leads");
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => c.client.getSnapshot() !== null && b.client.getSnapshot() !== null, "followers have the state");
  stream.send("changed", service.change((s) => { s.settings.ui.theme = "light"; }));
  await until(() => b.client.getSnapshot().version === 2 && c.client.getSnapshot().version === 2);
  assert.equal(b.client.getSnapshot().settings.ui.theme, "light");
  assert.equal(b.client.getStatus().leader, false);
  assert.equal(b.client.getStatus().connection, "live", "the leader's status");
  assert.equal(b.client.getStatus().lastEventId, 2);
  assert.equal(streamRequests(service).length, 1, "one stream for three tabs");
  // Followers do their own reads and writes.
  const answer = await c.client.updateUISettings({ fontSize: "large" });
  assert.equal(answer.fontSize, "large");
  assert.equal(c.client.getSnapshot().settings.ui.fontSize, "large");
  for (const t of [a, b, c]) t.client.close();
});

test("when the leader goes away a follower takes over and resumes from its own last event id", async () => {
  const service = new FakeService();
  const hub = new ChannelHub();
  const locks = new FakeLocks();
  const first = service.nextStream();
  const a = tab(service, hub, locks);
  const stream = await first;
  const b = tab(service, hub, locks);
  stream.send("snapshot", snapshotEvent(service.state));
  stream.send("changed", service.change((s) => { s.settings.llm.model = "m2"; }));
  await until(() => b.client.getSnapshot()?.version === 2, "b follows");
  const takeover = service.nextStream();
  a.client.close();
  const second = await takeover;
  await until(() => b.client.getStatus().leader, "b leads");
  assert.equal(second.request.headers.get("Last-Event-ID"), "2");
  assert.equal(stream.closed, true, "the old leader's stream is closed");
  second.send("changed", service.change((s) => { s.settings.llm.model = "m3"; }));
  await until(() => b.client.getSnapshot().version === 3);
  assert.equal(b.client.getStatus().connection, "live");
  b.client.close();
});

test("a late follower gets the state from the leader, and a follower seeing a gap refetches", async () => {
  const service = new FakeService();
  const hub = new ChannelHub();
  const locks = new FakeLocks();
  const first = service.nextStream();
  const a = tab(service, hub, locks);
  const stream = await first;
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => a.client.getSnapshot() !== null);
  const b = tab(service, hub, locks);
  await until(() => b.client.getSnapshot()?.version === 1, "the leader answered hello");
  assert.equal(service.requests.filter((r) => r.path === API).length, 0, "no read needed");
  // Messages on the channel are input too: unknown ones are ignored, and an event
  // over a gap is not applied: the follower reads the state itself.
  const stranger = new hub.BroadcastChannel("shared-state::*");
  stranger.postMessage({ t: "surprise", from: "x" });
  stranger.postMessage("not an object");
  service.change((s) => { s.settings.llm.model = "missed"; });
  const refetch = service.nextRequest(API);
  stranger.postMessage({ t: "event", from: "x", event: service.change((s) => { s.settings.llm.model = "gap"; }) });
  await refetch;
  await until(() => b.client.getSnapshot().version === 3, "the follower refetched");
  assert.equal(b.client.getSnapshot().settings.llm.model, "gap");
  assert.equal(a.client.getSnapshot().version, 1, "the leader ignores events from the channel");
  stranger.close();
  b.client.close();
  a.client.close();
});

test("a hidden leader keeps streaming while another tab is visible, and pauses when none is", async () => {
  const service = new FakeService();
  const hub = new ChannelHub();
  const locks = new FakeLocks();
  const first = service.nextStream();
  const a = tab(service, hub, locks);
  await first;
  const b = tab(service, hub, locks);
  await until(() => a.client.getStatus().connection === "live");
  a.doc.visibilityState = "hidden";
  a.doc.dispatchEvent(new Event("visibilitychange"));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(a.client.getStatus().connection, "live", "b is visible");
  b.doc.visibilityState = "hidden";
  b.doc.dispatchEvent(new Event("visibilitychange"));
  await until(() => a.client.getStatus().connection === "paused", "all hidden: paused");
  await until(() => b.client.getStatus().connection === "paused", "followers told");
  assert.equal(service.openStreams().length, 0);
  const resumed = service.nextStream();
  b.doc.visibilityState = "visible";
  b.doc.dispatchEvent(new Event("visibilitychange"));
  await resumed;
  await until(() => b.client.getStatus().connection === "live");
  a.client.close();
  b.client.close();
});

test("persist: the last state shows at once on the next start, stale until the stream delivers", async () => {
  const service = new FakeService();
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const first = createSharedStateClient({ fetch: service.fetch, EventSource: null, persist: true, storage, token: "secret-token" });
  first.subscribe(() => {});
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => first.getSnapshot() !== null);
  first.close(); // flushes the debounced save
  const [[key, saved]] = [...store];
  assert.equal(key, "shared-state::*");
  assert.ok(!saved.includes("secret-token"), "never the token");
  const second = createSharedStateClient({ fetch: service.fetch, EventSource: null, persist: true, storage });
  assert.deepEqual(second.getSnapshot(), service.state, "shown at once");
  assert.equal(second.getStatus().stale, true);
  second.subscribe(() => {});
  const next = await service.nextStream();
  assert.equal(next.request.headers.get("Last-Event-ID"), null, "a persisted state is no cursor");
  next.send("snapshot", snapshotEvent(service.state));
  await until(() => second.getStatus().stale === false, "live: no longer stale");
  second.close();
});

test("persist: full, blocked or corrupt storage is ignored, never thrown", async () => {
  const service = new FakeService();
  const broken = { getItem: () => { throw new Error("SecurityError"); }, setItem: () => { throw new Error("QuotaExceededError"); }, removeItem: () => {} };
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: null, persist: true, storage: broken });
  assert.equal(client.getSnapshot(), null);
  client.subscribe(() => {});
  (await service.nextStream()).send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  client.close();
  for (const text of ["{not json", "[]", '{"version":"x"}', "null"]) {
    const corrupt = createSharedStateClient({ fetch: service.fetch, persist: true, live: false, storage: { getItem: () => text, setItem: () => {}, removeItem: () => {} } });
    assert.equal(corrupt.getSnapshot(), null, text);
    corrupt.close();
  }
});

test("close() is idempotent, rejects what is in flight and leaves no listeners", async () => {
  const service = new FakeService();
  const hub = new ChannelHub();
  const locks = new FakeLocks();
  const win = new EventTarget();
  const added = [];
  const original = win.addEventListener.bind(win);
  win.addEventListener = (type, fn) => { added.push(type); original(type, fn); };
  let removed = 0;
  win.removeEventListener = () => { removed++; };
  const { client } = tab(service, hub, locks, { window: win });
  await service.nextStream();
  let hanging;
  const slow = createSharedStateClient({ fetch: (url, init) => new Promise((_, reject) => { hanging = init.signal; init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))); }), live: false });
  const read = slow.getState().catch((e) => e);
  await until(() => hanging !== undefined, "the read in flight");
  slow.close();
  assert.equal((await read).code, "closed");
  assert.equal(hanging.aborted, true);
  client.close();
  client.close();
  assert.equal(client.getStatus().connection, "closed");
  assert.equal(removed, added.length, "every window listener removed");
  assert.equal(hub.channels.size, 0, "channel closed");
  await until(() => locks.holder(`shared-state::*`) === undefined, "lock released");
  assert.equal(service.openStreams().length, 0);
  assert.equal((await client.getUser().catch((e) => e)).code, "closed");
});

test("a node process that creates, subscribes and closes a client exits by itself", async () => {
  // A real HTTP server here, the real client (Node's fetch) in a child process: the
  // child exits only if close() left no socket, timer or stream behind.
  const state = makeState();
  const server = createServer((request, response) => {
    if (request.url.startsWith(`${API}/events`)) {
      response.writeHead(200, { "Content-Type": "text/event-stream" });
      response.write(`retry: 3000\n\nevent: snapshot\nid: 1\ndata: ${JSON.stringify(snapshotEvent(state))}\n\n`);
      return; // never ends, like the service's stream
    }
    response.writeHead(200, { "Content-Type": "application/json", ETag: 'W/"v1"' });
    response.end(JSON.stringify(state));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  try {
    const script = fileURLToPath(new URL("./live/close-exits.mjs", import.meta.url));
    const child = spawn(process.execPath, [script, url], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => { output += chunk; });
    child.stderr.on("data", (chunk) => { output += chunk; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 20000);
    const code = await new Promise((resolve) => child.on("exit", (c, signal) => resolve(signal ?? c)));
    clearTimeout(timer);
    assert.equal(code, 0, output);
    assert.match(output, /closed after version 1/);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
