// The live connection: one stream, resume, back-off, polling fallback, EventSource, visibility.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createSSEParser, createSharedStateClient } from "../index.js";
import { API, FakeEventSource, FakeService, ManualTimers, snapshotEvent, until } from "./fakes.js";

function timedClient(service, timers, options = {}) {
  return createSharedStateClient({
    fetch: service.fetch,
    EventSource: null,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    random: () => 0.5,
    ...options,
  });
}

/** A reconnect timer: neither the 5 s poll nor the 45 s silence watchdog. */
const isReconnect = (timer) => timer.ms !== 5000 && timer.ms !== 45000;

test("one event stream per client, whatever the number of listeners", async () => {
  const service = new FakeService();
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: null });
  const offs = [];
  for (let i = 0; i < 50; i++) offs.push(client.subscribe(() => {}));
  client.onEvent(() => {});
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  offs.forEach((off) => off());
  client.subscribe(() => {});
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(service.requests.filter((r) => r.path === `${API}/events`).length, 1);
  client.close();
  assert.equal(service.openStreams().length, 0, "close() ended it");
});

test("a dropped stream resumes with Last-Event-ID after a jittered back-off honouring retry:", async () => {
  const service = new FakeService();
  const timers = new ManualTimers();
  const client = timedClient(service, timers);
  client.subscribe(() => {});
  const first = await service.nextStream();
  assert.equal(first.request.headers.get("Last-Event-ID"), null, "no cursor at first");
  assert.equal(first.request.headers.get("Accept"), "text/event-stream");
  first.send("snapshot", snapshotEvent(service.state));
  first.send("changed", service.change((s) => { s.settings.ui.theme = "light"; }));
  await until(() => client.getSnapshot()?.version === 2);
  first.end();
  await until(() => timers.pending.size === 1, "the reconnect timer");
  // retry: 3000 from the stream; random() = 0.5 of the first window.
  assert.deepEqual(timers.delays(), [1500]);
  assert.equal(client.getStatus().connection, "connecting");
  assert.equal(client.getStatus().stale, true, "disconnected: the state may be old");
  const next = service.nextStream();
  timers.advance(1500);
  const second = await next;
  assert.equal(second.request.headers.get("Last-Event-ID"), "2");
  second.send("changed", service.change((s) => { s.settings.ui.theme = "dark"; }));
  await until(() => client.getSnapshot()?.version === 3);
  assert.equal(client.getStatus().connection, "live");
  assert.equal(client.getStatus().stale, false);
  client.close();
});

test("failed connections back off exponentially up to the cap, and a healthy one resets it", async () => {
  const service = new FakeService();
  service.streamAnswer = { status: 503, body: { detail: "Not ready.", code: "not_ready" } };
  service.state = { ...service.state };
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { random: () => 0.999999, retryCapMs: 8000 });
  client.subscribe(() => {});
  const delays = [];
  for (let i = 0; i < 6; i++) {
    await until(() => [...timers.pending.values()].some((t) => isReconnect(t)), `reconnect ${i}`);
    const reconnect = [...timers.pending.entries()].find(([, t]) => isReconnect(t));
    delays.push(reconnect[1].ms);
    timers.pending.delete(reconnect[0]);
    reconnect[1].fn();
  }
  // base 1000 ms (no retry: seen yet): 2000, 4000, then the 8000 cap
  assert.deepEqual(delays, [1999, 3999, 7999, 7999, 7999, 7999]);
  await until(() => [...timers.pending.values()].some((t) => isReconnect(t)));
  assert.equal(client.getStatus().error.code, "not_ready");
  assert.equal(client.getStatus().connection, "polling");
  assert.equal(client.getStatus().stale, false, "polling works: the state is current");
  service.streamAnswer = null;
  const healthy = service.nextStream();
  const reconnect = [...timers.pending.entries()].find(([, t]) => isReconnect(t));
  timers.pending.delete(reconnect[0]);
  reconnect[1].fn();
  const stream = await healthy;
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getStatus().connection === "live");
  assert.equal(client.getStatus().error, null, "cleared when live");
  stream.end();
  await until(() => [...timers.pending.values()].some((t) => isReconnect(t)));
  const after = [...timers.pending.values()].find((t) => isReconnect(t));
  assert.equal(after.ms, 2999, "back to the first window (retry: 3000 now known)");
  client.close();
});

test("an unavailable stream falls back to polling with If-None-Match; 304s change nothing", async () => {
  const service = new FakeService();
  service.streamAnswer = { status: 404, body: { detail: "Not Found", code: "not_found" } };
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { pollIntervalMs: 250 });
  let notifications = 0;
  client.subscribe(() => notifications++);
  await until(() => client.getSnapshot() !== null, "the first poll");
  assert.equal(client.getStatus().connection, "polling");
  assert.equal(client.getStatus().stale, false);
  const first = client.getSnapshot();
  const count = notifications;
  const polls = () => service.requests.filter((r) => r.path === API);
  await until(() => timers.delays().includes(250), "the poll timer");
  timers.pending.forEach((t, id) => { if (t.ms === 250) { timers.pending.delete(id); t.fn(); } });
  await until(() => polls().length === 2, "the second poll");
  await until(() => timers.delays().includes(250));
  assert.equal(polls()[1].headers.get("If-None-Match"), 'W/"v1"');
  assert.equal(client.getSnapshot(), first, "a 304 keeps the snapshot");
  assert.equal(notifications, count);
  service.change((s) => { s.conversations.push({ id: "c-9", title: "Polled" }); });
  timers.pending.forEach((t, id) => { if (t.ms === 250) { timers.pending.delete(id); t.fn(); } });
  await until(() => client.getSnapshot().version === 2, "a poll with news");
  assert.equal(client.getSnapshot().workspaces, first.workspaces);
  assert.equal(client.getSnapshot().conversations[0], first.conversations[0]);
  // The stream is still tried in the background, and once it works polling stops.
  service.streamAnswer = null;
  const stream = service.nextStream();
  const reconnect = [...timers.pending.entries()].find(([, t]) => t.ms !== 250);
  assert.ok(reconnect, "a stream attempt is scheduled");
  timers.pending.delete(reconnect[0]);
  reconnect[1].fn();
  (await stream).send("changed", service.change((s) => { s.settings.ui.theme = "light"; }));
  await until(() => client.getStatus().connection === "live");
  assert.deepEqual(timers.delays().filter((ms) => ms === 250), [], "polling stopped");
  assert.equal((await stream).request.headers.get("Last-Event-ID"), "2", "resumed from the polled version");
  client.close();
});

test("repeated stream failures start polling; a failing poll is offline with the error", async () => {
  let up = true;
  const service = new FakeService();
  const fetch = async (url, init) => {
    if (!up || String(url).includes("/events")) throw new TypeError("fetch failed");
    return service.fetch(url, init);
  };
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { fetch, pollIntervalMs: 100 });
  client.subscribe(() => {});
  for (let i = 0; i < 3; i++) {
    await until(() => timers.delays().some((ms) => ms !== 100));
    const [id, timer] = [...timers.pending.entries()].find(([, t]) => t.ms !== 100);
    timers.pending.delete(id);
    timer.fn();
  }
  await until(() => client.getStatus().connection === "polling" && client.getSnapshot() !== null);
  up = false;
  await until(() => timers.delays().includes(100));
  const [id, timer] = [...timers.pending.entries()].find(([, t]) => t.ms === 100);
  timers.pending.delete(id);
  timer.fn();
  await until(() => client.getStatus().connection === "offline");
  assert.equal(client.getStatus().error.code, "network_error");
  assert.equal(client.getStatus().stale, true);
  client.close();
});

test("with an EventSource and no token, the stream uses it and resumes with ?lastEventId=", async () => {
  FakeEventSource.instances = [];
  const service = new FakeService();
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { EventSource: FakeEventSource, sections: ["workspaces", "settings"], baseUrl: "http://h:1" });
  client.subscribe(() => {});
  await until(() => FakeEventSource.instances.length === 1);
  const [source] = FakeEventSource.instances;
  assert.equal(source.url, "http://h:1/api/shared-state/events?sections=settings%2Cworkspaces");
  source.open();
  source.emit("snapshot", snapshotEvent({ version: 4, syncTimestamp: null, settings: service.state.settings, workspaces: service.state.workspaces }));
  await until(() => client.getSnapshot()?.version === 4);
  source.fail();
  assert.equal(source.readyState, 2, "closed: the client does its own back-off");
  await until(() => timers.pending.size === 1);
  timers.advance(60000);
  await until(() => FakeEventSource.instances.length === 2);
  assert.equal(FakeEventSource.instances[1].url, "http://h:1/api/shared-state/events?sections=settings%2Cworkspaces&lastEventId=4");
  assert.equal(service.requests.filter((r) => r.path.endsWith("/events")).length, 0);
  client.close();
  assert.equal(FakeEventSource.instances[1].readyState, 2);
});

test("with a token the stream is read with fetch and an Authorization header, never ?access_token=", async () => {
  FakeEventSource.instances = [];
  const service = new FakeService();
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: FakeEventSource, token: "t0ken" });
  client.subscribe(() => {});
  const stream = await service.nextStream();
  assert.equal(stream.request.headers.get("Authorization"), "Bearer t0ken");
  assert.equal(stream.request.query.get("access_token"), null);
  assert.equal(FakeEventSource.instances.length, 0);
  client.close();
});

test("a hidden page pauses the stream; visible again resumes it from the last event id", async () => {
  const service = new FakeService();
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  const win = new EventTarget();
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: null, document: doc, window: win });
  client.subscribe(() => {});
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  doc.visibilityState = "hidden";
  doc.dispatchEvent(new Event("visibilitychange"));
  assert.equal(client.getStatus().connection, "paused");
  await until(() => service.openStreams().length === 0, "the stream closed");
  const resumed = service.nextStream();
  doc.visibilityState = "visible";
  doc.dispatchEvent(new Event("visibilitychange"));
  assert.equal((await resumed).request.headers.get("Last-Event-ID"), "1");
  client.close();
});

test("coming back online reconnects at once instead of waiting out the back-off", async () => {
  const service = new FakeService();
  const win = new EventTarget();
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { window: win, document: null });
  client.subscribe(() => {});
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  stream.end();
  await until(() => timers.pending.size === 1);
  win.dispatchEvent(new Event("offline"));
  assert.equal(client.getStatus().connection, "offline");
  const next = service.nextStream();
  win.dispatchEvent(new Event("online"));
  assert.equal((await next).request.headers.get("Last-Event-ID"), "1");
  assert.deepEqual(timers.delays(), [45000], "the back-off timer was cancelled (the silence watchdog is on)");
  client.close();
});

test("a silent stream (no bytes, not even heartbeats) is given up and reconnected", async () => {
  const service = new FakeService();
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { streamSilenceMs: 45000 });
  client.subscribe(() => {});
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  await until(() => timers.delays().includes(45000));
  const next = service.nextStream();
  timers.advance(45000);
  await until(() => stream.closed, "the silent stream aborted");
  await until(() => timers.delays().some((ms) => ms !== 45000), "a reconnect scheduled");
  assert.equal(client.getStatus().error.code, "stream_silent");
  timers.advance(30000);
  assert.equal((await next).request.headers.get("Last-Event-ID"), "1");
  client.close();
});

test("a read that gets no answer times out with code timeout", async () => {
  const client = createSharedStateClient({ live: false, requestTimeoutMs: 50, fetch: (url, init) => new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")))) });
  const error = await client.getState().catch((e) => e);
  assert.equal(error.code, "timeout");
  assert.equal(error.status, 0);
  client.close();
});

test("an answer larger than the bound is refused", async () => {
  const huge = new ReadableStream({
    pull(controller) { controller.enqueue(new Uint8Array(1024 * 1024).fill(32)); },
  });
  const client = createSharedStateClient({ live: false, fetch: async () => new Response(huge, { status: 200 }) });
  const error = await client.getState().catch((e) => e);
  assert.equal(error.code, "invalid_response");
  client.close();
});

test("an unknown section name is refused at creation", () => {
  assert.throws(() => createSharedStateClient({ fetch: async () => {}, sections: ["settings", "secrets"] }), /unknown section "secrets"/);
});

test("live: false opens no stream and no timers; reads still feed the store", async () => {
  const service = new FakeService();
  const timers = new ManualTimers();
  const client = timedClient(service, timers, { live: false });
  client.subscribe(() => {});
  await client.getState();
  assert.equal(client.getSnapshot().version, 1);
  assert.equal(client.getStatus().connection, "idle");
  assert.equal(client.getStatus().stale, false);
  assert.equal(service.requests.filter((r) => r.path.endsWith("/events")).length, 0);
  assert.equal(timers.pending.size, 0);
  client.close();
});

test("the SSE parser follows the WHATWG rules", () => {
  const events = [];
  const retries = [];
  const comments = [];
  const parser = createSSEParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms), onComment: (c) => comments.push(c) });
  const text = "\uFEFFretry: 2500\r\n: hello\r\n\r\nevent: changed\rid: 7\rdata: a\rdata:  b\r\rdata\n\nid: 8\0\ndata: c\n\nretry: 12x\nevent: x\n\ndata: no end";
  // Fed one character at a time: CRLF split across chunks is one line end.
  for (const ch of text) parser.push(ch);
  assert.deepEqual(retries, [2500]);
  assert.deepEqual(comments, ["hello"]);
  assert.deepEqual(events, [
    { type: "changed", data: "a\n b", id: "7" },
    { type: "message", data: "", id: "7" },
    { type: "message", data: "c", id: "7" },
  ]);
  parser.end(); // the unterminated event is dropped
  assert.equal(events.length, 3);
});

test("an event larger than the bound is refused, not buffered", () => {
  const parser = createSSEParser({ onEvent: () => {}, maxBytes: 1000 });
  assert.throws(() => parser.push(`data: ${"x".repeat(2000)}`), { code: "event_too_large" });
});
