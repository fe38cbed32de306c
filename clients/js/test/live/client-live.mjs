// The real JS client against the real service: run by tests/e2e/test_js_client_live.py
// as `node client-live.mjs <service-url> <anythingllm-simulator-url>`. It prints one
// JSON line per step and must exit by itself after close() (nothing left running).
import { test } from "node:test";

import { SharedStateError, createSharedStateClient } from "../../index.js";

const [serviceUrl, anythingllmUrl] = process.argv.slice(2);

/** `promise`, or a rejection naming `what` after `ms` (the timer never outlives it). */
function within(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Resolves once `predicate(client)` is true, re-checked on every store notification. */
function when(client, predicate) {
  return new Promise((resolve) => {
    if (predicate(client)) return resolve();
    const off = client.subscribe(() => {
      if (predicate(client)) {
        off();
        resolve();
      }
    });
  });
}

function report(step, value) {
  console.log(JSON.stringify({ step, ...value }));
}

async function main() {
  const client = createSharedStateClient({ baseUrl: serviceUrl });
  const events = [];
  client.onEvent((event) => events.push(event));
  await within(when(client, (c) => c.getSnapshot() !== null && c.getStatus().connection === "live"), 10000, "the first state");
  const first = client.getSnapshot();
  report("live", { version: first.version, model: first.settings.llm.model, connection: client.getStatus().connection, firstEvent: events[0]?.type });

  // Reads, ETag-aware: the second read of the settings is a 304 resolved from the cache.
  const settings = await client.getSettings();
  const again = await client.getSettings();
  const slug = first.workspaces[0]?.slug;
  const workspace = await client.getWorkspace(slug);
  const missing = await client.getWorkspace("no-such-workspace").catch((error) => error);
  const conversations = await client.getConversations();
  const status = await client.getServiceStatus();
  report("reads", {
    sameCachedBody: settings === again,
    workspaceSlug: workspace.slug,
    missing: { isError: missing instanceof SharedStateError, status: missing.status, code: missing.code },
    conversations: conversations.length,
    subscribers: status.subscribers,
  });

  // A second client, reads only, holds the settings ETag from before the write below.
  const stale = createSharedStateClient({ baseUrl: serviceUrl, live: false });
  await stale.getSettings();

  // A write: optimistic at once, then the answer; the simulator records it.
  const writing = client.updateLLMSettings({ model: "gpt-live-js" });
  const optimistic = client.getSnapshot().settings.llm.model;
  const answer = await within(writing, 10000, "the write");
  await within(when(client, (c) => events.some((e) => e.type === "changed" && e.changes.settings?.llm?.model === "gpt-live-js")), 10000, "the write's event");
  report("write", { optimistic, answer: answer.model, shown: client.getSnapshot().settings.llm.model });

  // 412: the other client's ETag is stale now.
  const mismatch = await stale.updateUISettings({ theme: "light" }).catch((error) => error);
  report("mismatch", { status: mismatch.status, code: mismatch.code, theme: stale.getSnapshot()?.settings.ui.theme ?? null });
  stale.close();

  // A change made in the simulated AnythingLLM arrives through the stream after a sync.
  const before = client.getSnapshot();
  const patched = await fetch(`${anythingllmUrl}/_sim/settings`, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ OpenAiModelPref: "gpt-from-simulator" }),
  });
  if (!patched.ok) throw new Error(`the simulator refused the change: ${patched.status}`);
  const synced = await client.sync();
  await within(when(client, (c) => c.getSnapshot().settings.llm.model === "gpt-from-simulator"), 10000, "the simulator's change");
  const after = client.getSnapshot();
  report("upstream-change", {
    changed: synced.changed,
    model: after.settings.llm.model,
    viaEvent: events.some((e) => e.type === "changed" && e.changes.settings?.llm?.model === "gpt-from-simulator"),
    workspacesShared: after.workspaces === before.workspaces,
    uiShared: after.settings.ui === before.settings.ui,
    lastEventId: client.getStatus().lastEventId,
  });

  client.close();
  report("closed", { connection: client.getStatus().connection });
}

if (!serviceUrl) {
  // `node --test` also picks this file up: it is not a test by itself.
  test.skip("client-live.mjs runs from tests/e2e/test_js_client_live.py, with URLs");
} else {
  main().catch((error) => {
    console.error(error?.stack ?? String(error));
    process.exitCode = 1;
  });
}
