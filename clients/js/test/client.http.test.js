// Reads (ETag-aware, errors) and writes (optimistic, If-Match, Idempotency-Key, rollback, 412).
import { test } from "node:test";
import assert from "node:assert/strict";

import { SharedStateError, createSharedStateClient } from "../index.js";
import { API, FakeService, snapshotEvent, until } from "./fakes.js";

function readClient(service, options = {}) {
  return createSharedStateClient({ fetch: service.fetch, live: false, ...options });
}

async function liveClient(service, options = {}) {
  const client = createSharedStateClient({ fetch: service.fetch, EventSource: null, ...options });
  const notified = [];
  client.subscribe(() => notified.push(client.getSnapshot()));
  const stream = await service.nextStream();
  stream.send("snapshot", snapshotEvent(service.state));
  await until(() => client.getSnapshot() !== null);
  return { client, stream, notified };
}

test("reads send the path's ETag back and resolve a 304 with the cached body", async () => {
  const service = new FakeService();
  const client = readClient(service, { baseUrl: "http://service.test/" });
  const first = await client.getSettings();
  assert.deepEqual(first, service.state.settings);
  const second = await client.getSettings();
  assert.equal(second, first, "the cached body itself");
  const [a, b] = service.requests;
  assert.equal(a.url, "http://service.test/api/shared-state/settings", "no double slash");
  assert.equal(a.headers.get("If-None-Match"), null);
  assert.equal(b.headers.get("If-None-Match"), service.etagOf(service.state.settings));
  service.state.settings.ui.theme = "light";
  const third = await client.getSettings();
  assert.equal(third.ui.theme, "light");
  client.close();
});

test("every read of §9 asks its path", async () => {
  const service = new FakeService();
  const client = readClient(service);
  assert.deepEqual(await client.getState(), service.state);
  assert.deepEqual(await client.getUser(), service.state.user);
  assert.deepEqual(await client.getWorkspaces(), service.state.workspaces);
  assert.deepEqual(await client.getConversations(), service.state.conversations);
  assert.deepEqual(await client.getWorkspace("ops"), service.state.workspaces[1]);
  assert.deepEqual(await client.getWorkspace(1), service.state.workspaces[0]);
  assert.deepEqual(await client.getConversation("c-2"), service.state.conversations[1]);
  assert.equal((await client.getServiceStatus()).version, 1);
  assert.deepEqual(Object.keys(await client.sync()).sort(), ["changed", "durationMs", "sources", "version"]);
  const paths = service.requests.map((r) => `${r.method} ${r.path}`);
  assert.deepEqual(paths.slice(0, 9), [
    `GET ${API}`, `GET ${API}/user`, `GET ${API}/workspaces`, `GET ${API}/conversations`,
    `GET ${API}/workspaces/ops`, `GET ${API}/workspaces/1`, `GET ${API}/conversations/c-2`,
    `GET ${API}/status`, `POST ${API}/sync`,
  ]);
  client.close();
});

test("an unknown id rejects with status 404 and the service's code and detail", async () => {
  const service = new FakeService();
  const client = readClient(service);
  const error = await client.getWorkspace("nope/../x").catch((e) => e);
  assert.ok(error instanceof SharedStateError);
  assert.equal(error.status, 404);
  assert.equal(error.code, "not_found");
  assert.equal(error.message, "No workspace has the id or slug 'nope/../x'.");
  assert.equal(service.requests[0].path, `${API}/workspaces/nope%2F..%2Fx`);
  client.close();
});

test("a token (string or function) goes in the Authorization header", async () => {
  const service = new FakeService();
  let calls = 0;
  const client = readClient(service, { token: () => { calls++; return "s3cret"; } });
  await client.getUser();
  assert.equal(service.requests[0].headers.get("Authorization"), "Bearer s3cret");
  assert.equal(calls, 1);
  client.close();
});

test("a network failure is status 0, code network_error; a non-JSON body is a clear error", async () => {
  const down = readClient(new FakeService(), { fetch: async () => { throw new TypeError("fetch failed"); } });
  const error = await down.getState().catch((e) => e);
  assert.equal(error.status, 0);
  assert.equal(error.code, "network_error");
  const html = readClient(new FakeService(), { fetch: async () => new Response("<html>login</html>", { status: 200 }) });
  const invalid = await html.getState().catch((e) => e);
  assert.ok(invalid instanceof SharedStateError);
  assert.equal(invalid.code, "invalid_response");
  const bare = readClient(new FakeService(), { fetch: async () => new Response("", { status: 500 }) });
  const server = await bare.getState().catch((e) => e);
  assert.equal(server.status, 500);
  assert.equal(server.code, "http_500");
  down.close();
  html.close();
  bare.close();
});

test("FastAPI's 422 list stays in detail; the message names the fields", async () => {
  const service = new FakeService();
  service.writeFailure = { status: 422, body: { detail: [{ loc: ["body", "temperature"], msg: "Input should be less than or equal to 2", type: "less_than_equal" }] } };
  const client = readClient(service);
  const error = await client.updateLLMSettings({ temperature: 9 }).catch((e) => e);
  assert.equal(error.status, 422);
  assert.equal(error.code, "validation_error");
  assert.ok(Array.isArray(error.detail));
  assert.equal(error.message, "temperature: Input should be less than or equal to 2");
  client.close();
});

test("a write is optimistic, sent with If-Match and an Idempotency-Key, and the store takes the answer", async () => {
  const service = new FakeService();
  const { client, notified } = await liveClient(service);
  const before = client.getSnapshot();
  const count = notified.length;
  const writing = client.updateLLMSettings({ model: "gpt-4.1" });
  assert.equal(client.getSnapshot().settings.llm.model, "gpt-4.1", "shown at once");
  assert.equal(client.getSnapshot().workspaces, before.workspaces);
  assert.equal(notified.length, count + 1);
  const answer = await writing;
  assert.deepEqual(answer, service.state.settings.llm);
  const post = service.requests.find((r) => r.method === "POST");
  assert.match(post.headers.get("Idempotency-Key"), /^[0-9a-f-]{36}$/);
  const etagRead = service.requests.find((r) => r.path === `${API}/settings`);
  assert.ok(etagRead, "the settings ETag was read first");
  assert.ok(post.headers.get("If-Match"));
  assert.deepEqual(JSON.parse(post.body), { model: "gpt-4.1" });
  assert.equal(client.getSnapshot().settings.llm.model, "gpt-4.1");
  assert.equal(client.getSnapshot().settings.ui, before.settings.ui);
  client.close();
});

test("a failed write rolls back to the current state without its patch, and carries results", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  service.writeFailure = { status: 502, body: { detail: "LibreChat refused the write; AnythingLLM was put back.", code: "upstream_write_failed", results: { anythingllm: "rolled_back", librechat: "failed" } } };
  const gate = service.nextRequest(`${API}/llm-settings`, "POST");
  const writing = client.updateLLMSettings({ model: "doomed" }).catch((e) => e);
  assert.equal(client.getSnapshot().settings.llm.model, "doomed");
  await gate;
  // Meanwhile another change arrives: the rollback must keep it.
  stream.send("changed", service.change((state) => { state.settings.ui.theme = "light"; }));
  const error = await writing;
  assert.equal(error.status, 502);
  assert.equal(error.code, "upstream_write_failed");
  assert.equal(error.detail, "LibreChat refused the write; AnythingLLM was put back.");
  assert.deepEqual(error.results, { anythingllm: "rolled_back", librechat: "failed" });
  await until(() => client.getSnapshot().settings.ui.theme === "light");
  assert.equal(client.getSnapshot().settings.llm.model, "gpt-4o", "the patch is gone");
  assert.equal(client.getSnapshot().settings.ui.theme, "light", "the change that arrived stays");
  client.close();
});

test("a 412 refetches the state and rejects with version_mismatch", async () => {
  const service = new FakeService();
  const client = readClient(service);
  await client.getState();
  await client.getSettings(); // the client now holds the settings ETag
  service.state.settings.llm.model = "changed-elsewhere"; // the ETag is stale, no event told
  service.state.version = 2;
  const refetch = service.nextRequest(API);
  const error = await client.updateLLMSettings({ temperature: 0.2 }).catch((e) => e);
  assert.equal(error.status, 412);
  assert.equal(error.code, "version_mismatch");
  assert.ok(error.message.length > 0);
  await refetch;
  await until(() => client.getSnapshot()?.version === 2);
  assert.equal(client.getSnapshot().settings.llm.model, "changed-elsewhere");
  assert.equal(client.getSnapshot().settings.llm.temperature, 0.7, "no optimistic value left");
  client.close();
});

test("a changed event with settings invalidates the ETag: the next write revalidates it with a conditional GET", async () => {
  const service = new FakeService();
  const { client, stream } = await liveClient(service);
  await client.updateUISettings({ theme: "light" });
  stream.send("changed", service.lastWriteEvent);
  stream.send("changed", service.change((state) => { state.settings.llm.model = "from-elsewhere"; }));
  await until(() => client.getSnapshot().version === 3);
  const reads = () => service.requests.filter((r) => r.path === `${API}/settings`);
  const readsBefore = reads().length;
  await client.updateUISettings({ fontSize: "large" });
  const revalidation = reads()[readsBefore];
  assert.ok(revalidation, "a GET of the settings before the write");
  assert.ok(revalidation.headers.get("If-None-Match"), "conditional");
  const posts = service.requests.filter((r) => r.method === "POST");
  assert.equal(posts.at(-1).headers.get("If-Match"), service.etagOf({ ...service.state.settings, ui: { theme: "light", fontSize: "medium" } }));
  client.close();
});

test("a write retried after a network failure reuses its Idempotency-Key, once", async () => {
  const service = new FakeService();
  const client = readClient(service);
  service.failNextWriteNetwork = 1; // the first attempt lands, its answer is lost
  const answer = await client.updateUISettings({ theme: "light" });
  assert.deepEqual(answer, { theme: "light", fontSize: "medium" });
  const posts = service.requests.filter((r) => r.method === "POST");
  assert.equal(posts.length, 2);
  assert.equal(posts[0].headers.get("Idempotency-Key"), posts[1].headers.get("Idempotency-Key"));
  assert.equal(service.state.version, 2, "written once");
  service.failNextWriteNetwork = 2;
  const error = await client.updateUISettings({ theme: "dark" }).catch((e) => e);
  assert.equal(error.code, "network_error");
  assert.equal(service.requests.filter((r) => r.method === "POST").length, 4, "at most one retry");
  const keys = new Set(service.requests.filter((r) => r.method === "POST").map((r) => r.headers.get("Idempotency-Key")));
  assert.equal(keys.size, 2, "one key per logical write");
  client.close();
});

test("two writes in flight do not corrupt each other", async () => {
  const service = new FakeService();
  const { client } = await liveClient(service);
  const first = client.updateLLMSettings({ model: "m1" });
  const second = client.updateLLMSettings({ temperature: 0.3 });
  assert.equal(client.getSnapshot().settings.llm.model, "m1");
  assert.equal(client.getSnapshot().settings.llm.temperature, 0.3);
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.model, "m1");
  assert.deepEqual(b, { provider: "openai", model: "m1", temperature: 0.3, maxTokens: 4096 });
  assert.deepEqual(client.getSnapshot().settings.llm, b);
  assert.equal(service.requests.filter((r) => r.method === "POST").length, 2, "no 412 between them");
  client.close();
});

test("one of two writes failing rolls back only its own patch", async () => {
  const service = new FakeService();
  const { client } = await liveClient(service);
  const first = client.updateLLMSettings({ model: "m1" });
  const ui = client.updateUISettings({ theme: "light" });
  await first;
  service.writeFailure = { status: 502, body: { detail: "No.", code: "upstream_write_failed", results: { anythingllm: "skipped", librechat: "failed" } } };
  const error = await ui.catch((e) => e);
  assert.equal(error.code, "upstream_write_failed");
  assert.equal(client.getSnapshot().settings.llm.model, "m1");
  assert.equal(client.getSnapshot().settings.ui.theme, "dark");
  client.close();
});

test("a write's answer does not overwrite a later settings change the stream already brought", async () => {
  const service = new FakeService();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const fetch = async (url, init) => {
    const response = await service.fetch(url, init);
    if (init?.method === "POST") await held; // the answer is late
    return response;
  };
  const { client, stream } = await liveClient(service, { fetch });
  const gate = service.nextRequest(`${API}/llm-settings`, "POST");
  const writing = client.updateLLMSettings({ model: "mine" });
  await gate;
  stream.send("changed", service.lastWriteEvent);
  stream.send("changed", service.change((state) => { state.settings.llm.model = "later"; }));
  await until(() => client.getSnapshot().version === 3);
  release();
  await writing;
  assert.equal(client.getSnapshot().settings.llm.model, "later");
  client.close();
});
