// The store: snapshot stability, structural sharing, events applied per contract §8.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createSharedStateClient, replaceEqualDeep } from "../index.js";
import { FakeService, makeState, snapshotEvent, until } from "./fakes.js";

async function liveClient(service, options = {}) {
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: null, ...options });
  let notifications = 0;
  client.subscribe(() => notifications++);
  const stream = await service.nextStream();
  return { client, stream, notifications: () => notifications };
}

test("getSnapshot is null until the first state, then the same object while nothing changes", async () => {
  const service = new FakeService();
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: null });
  assert.equal(client.getSnapshot(), null);
  client.subscribe(() => {});
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null, "the snapshot");
  const first = client.getSnapshot();
  assert.deepEqual(first, service.state);
  assert.equal(client.getSnapshot(), first);
  stream.write(": heartbeat\n\n");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(client.getSnapshot(), first);
  client.close();
});

test("a changed event replaces only its sections; unchanged sections and items keep their references", async () => {
  const service = new FakeService();
  const { client, stream, notifications } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  const before = client.getSnapshot();
  const count = notifications();
  const event = service.change((state) => {
    state.conversations[1] = { id: "c-2", title: "Hiring, round 2" };
    state.conversations.unshift({ id: "c-3", title: "New" });
  });
  stream.send("changed", event);
  await until(() => client.getSnapshot().version === 2, "version 2");
  const after = client.getSnapshot();
  assert.notEqual(after, before);
  assert.equal(after.settings, before.settings);
  assert.equal(after.user, before.user);
  assert.equal(after.workspaces, before.workspaces);
  assert.equal(after.sources, before.sources);
  assert.equal(after.conversations[1], before.conversations[0], "c-1 untouched keeps its reference");
  assert.deepEqual(after.conversations.map((c) => c.id), ["c-3", "c-1", "c-2"]);
  assert.equal(after.conversations[2].title, "Hiring, round 2");
  assert.equal(notifications(), count + 1, "one notification per applied event");
  assert.equal(client.getStatus().lastEventId, 2);
  client.close();
});

test("removed ids leave the list; settings, user and sources take their new values", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  const before = client.getSnapshot();
  stream.send("changed", service.change((state) => {
    state.workspaces = state.workspaces.filter((w) => w.id !== 1);
    state.settings.ui = { theme: "light", fontSize: "large" };
    state.sources.librechat.status = "stale";
    state.user = null;
  }));
  await until(() => client.getSnapshot().version === 2);
  const after = client.getSnapshot();
  assert.deepEqual(after, service.state);
  assert.equal(after.settings.llm, before.settings.llm, "the untouched part of settings is shared");
  assert.equal(after.workspaces[0], before.workspaces[1]);
  assert.equal(after.conversations, before.conversations);
  client.close();
});

test("a snapshot equal in parts reuses those parts, and an identical one changes nothing", async () => {
  const service = new FakeService();
  const { client, stream, notifications } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  const before = client.getSnapshot();
  const count = notifications();
  stream.send("snapshot", snapshotEvent(service.state));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(client.getSnapshot(), before);
  assert.equal(notifications(), count);
  service.state.version = 5;
  service.state.settings.llm.model = "gpt-4.1";
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot().version === 5);
  const after = client.getSnapshot();
  assert.equal(after.workspaces, before.workspaces);
  assert.equal(after.settings.ui, before.settings.ui);
  assert.notEqual(after.settings.llm, before.settings.llm);
  client.close();
});

test("a changed event over a gap is not applied: the client refetches the state", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  service.change((state) => { state.settings.llm.model = "missed"; });
  const event = service.change((state) => { state.settings.llm.temperature = 0.1; });
  const refetch = service.nextRequest("/api/shared-state");
  stream.send("changed", event); // previousVersion 2, the store holds 1
  await refetch;
  await until(() => client.getSnapshot().version === 3, "the refetched state");
  assert.deepEqual(client.getSnapshot(), service.state);
  client.close();
});

test("with sections, versions the stream skipped are not a gap", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service, { sections: ["settings"] });
  assert.equal(stream.request.query.get("sections"), "settings");
  stream.send("snapshot", snapshotEvent({ version: 1, syncTimestamp: null, settings: service.state.settings }));
  await until(() => client.getSnapshot() !== null);
  assert.deepEqual(Object.keys(client.getSnapshot()).sort(), ["settings", "syncTimestamp", "version"]);
  const event = { type: "changed", version: 4, previousVersion: 3, timestamp: "t", changes: { settings: { ...service.state.settings, ui: { theme: "light", fontSize: "small" } } } };
  stream.send("changed", event);
  await until(() => client.getSnapshot().version === 4);
  assert.equal(client.getSnapshot().settings.ui.theme, "light");
  assert.equal(service.requests.filter((r) => r.path === "/api/shared-state").length, 0, "no refetch");
  client.close();
});

test("hostile stream input is ignored: bad JSON, unknown types, bad ids, wrong shapes, a huge retry", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  const before = client.getSnapshot();
  stream.write("event: changed\nid: 2\ndata: {not json\n\n");
  stream.write("event: surprise\nid: 2\ndata: {\"type\":\"surprise\"}\n\n");
  stream.write("event: snapshot\nid: x\ndata: {\"type\":\"snapshot\",\"version\":\"7\",\"state\":5}\n\n");
  stream.write("retry: 99999999999999999999\n\n");
  stream.write("event: changed\nid: nope\ndata: {\"type\":\"snapshot\",\"version\":3,\"state\":{}}\n\n");
  const event = service.change((state) => { state.settings.ui.theme = "light"; });
  stream.send("changed", event);
  await until(() => client.getSnapshot().version === 2, "the good event after the bad ones");
  assert.equal(client.getSnapshot().workspaces, before.workspaces);
  assert.equal(client.getSnapshot().settings.ui.theme, "light");
  assert.equal(client.getStatus().connection, "live");
  client.close();
});

test("a changed event with a malformed list change is not applied and the state is refetched", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  const before = client.getSnapshot();
  const refetch = service.nextRequest("/api/shared-state");
  stream.send("changed", { type: "changed", version: 2, previousVersion: 1, timestamp: "t", changes: { workspaces: { added: [{ name: "no id" }] } } });
  await refetch;
  assert.equal(client.getSnapshot().workspaces, before.workspaces);
  client.close();
});

test("onEvent sees each applied event; unsubscribe stops it", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  const seen = [];
  const off = client.onEvent((event) => seen.push(`${event.type}:${event.version}`));
  stream.send("snapshot", snapshotEvent(service.state));
  stream.send("changed", service.change((state) => { state.settings.ui.theme = "light"; }));
  await until(() => seen.length === 2);
  off();
  stream.send("changed", service.change((state) => { state.settings.ui.theme = "dark"; }));
  await until(() => client.getSnapshot()?.version === 3);
  assert.deepEqual(seen, ["snapshot:1", "changed:2"]);
  client.close();
});

test("getServerSnapshot and initialState serve SSR and hydration", () => {
  const initialState = makeState({ version: 9 });
  const client = createSharedStateClient({ fetch: new FakeService().fetch, initialState, live: false });
  assert.equal(client.getServerSnapshot(), initialState);
  assert.equal(client.getSnapshot(), initialState);
  const plain = createSharedStateClient({ fetch: new FakeService().fetch, live: false });
  assert.equal(plain.getServerSnapshot(), null);
  client.close();
  plain.close();
});

test("getStatus is the same object while nothing changes", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getStatus().connection === "live" && client.getSnapshot() !== null);
  const status = client.getStatus();
  assert.equal(client.getStatus(), status);
  assert.deepEqual(status, { connection: "live", stale: false, error: null, lastEventId: 1, leader: true });
  client.close();
  assert.equal(client.getStatus().connection, "closed");
});

test("replaceEqualDeep returns the previous value when deep-equal and shares equal parts", () => {
  const prev = { a: [1, { b: 2 }], c: { d: 3 } };
  assert.equal(replaceEqualDeep(prev, structuredClone(prev)), prev);
  const next = replaceEqualDeep(prev, { a: [1, { b: 2 }], c: { d: 4 } });
  assert.equal(next.a, prev.a);
  assert.deepEqual(next.c, { d: 4 });
  assert.notEqual(replaceEqualDeep({ a: 1 }, { a: 1, b: undefined }), undefined);
});

test("with sections, a refetched whole state keeps only those sections", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service, { sections: ["workspaces"] });
  stream.send("snapshot", snapshotEvent({ version: 1, syncTimestamp: null, workspaces: service.state.workspaces }));
  await until(() => client.getSnapshot() !== null);
  service.change((s) => { s.workspaces.push({ id: 3, name: "New", slug: "new" }); });
  const refetch = service.nextRequest("/api/shared-state");
  stream.send("changed", { type: "changed", version: 3, previousVersion: 2, timestamp: "t", changes: { workspaces: "garbage" } });
  await refetch;
  await until(() => client.getSnapshot().version === 2);
  assert.deepEqual(Object.keys(client.getSnapshot()).sort(), ["syncTimestamp", "version", "workspaces"]);
  assert.equal(client.getSnapshot().workspaces.length, 3);
  client.close();
});

test("a snapshot with a lower version (a service restarted without its snapshot file) is taken", async () => {
  const service = new FakeService(makeState({ version: 57 }));
  const { client, stream } = await liveClient(service);
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot()?.version === 57);
  const restarted = makeState({ version: 2 });
  restarted.settings.llm.model = "after-restart";
  stream.send("snapshot", snapshotEvent(restarted));
  await until(() => client.getSnapshot().version === 2, "the restarted service's state");
  assert.equal(client.getStatus().lastEventId, 2, "the cursor follows the service");
  stream.send("changed", { type: "changed", version: 3, previousVersion: 2, timestamp: "t", changes: { settings: { ...restarted.settings, ui: { theme: "light", fontSize: "small" } } } });
  await until(() => client.getSnapshot().version === 3);
  assert.equal(client.getSnapshot().settings.llm.model, "after-restart");
  client.close();
});
