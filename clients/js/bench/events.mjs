// Events applied per second by the client's store, against a naive baseline.
//
// A state with 1,000 conversations; a stream of realistic `changed` events (most update
// one conversation, some add one, some change the settings or a source's status), as SSE
// bytes in 16 KiB chunks through the client's own fetch-stream reader, SSE parser and
// store (structural sharing, one notification per event). The baseline, in the same run,
// does what a hand-written client often does: JSON.parse of each event's data and a
// whole-state deep copy with the change applied. Prints the median and min-max of 5 runs
// for each, and the ratio (client / baseline; above 1 is faster than the baseline).
//
//   node bench/events.mjs [--events N] [--runs N] [--json]

import { createSharedStateClient } from "../client.js";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const EVENTS = option("--events", 500);
const RUNS = option("--runs", 5);
const CONVERSATIONS = 1000;
const CHUNK = 16 * 1024;

function conversation(i, round = 0) {
  return {
    id: `conv-${String(i).padStart(5, "0")}`,
    conversationId: `conv-${String(i).padStart(5, "0")}`,
    title: `Conversation ${i}${round ? ` (edit ${round})` : ""}`,
    endpoint: "openAI",
    model: "gpt-4o",
    messageCount: 10 + (i % 40) + round,
    createdAt: "2026-11-01T09:00:00.000Z",
    updatedAt: new Date(Date.UTC(2026, 10, 21, 12, 0, round % 60)).toISOString(),
    tags: ["work"],
  };
}

function initialState() {
  return {
    version: 1,
    syncTimestamp: "2026-11-21T12:00:00.000Z",
    user: { id: 1, username: "ada", email: "ada@example.com", name: "Ada", role: "admin", anythingLLM: { id: 1, username: "ada" }, libreChat: { id: "665f", username: "ada", email: "ada@example.com" } },
    settings: {
      llm: { provider: "openai", model: "gpt-4o", temperature: 0.7, maxTokens: 4096 },
      embedding: { provider: "openai", model: "text-embedding-3-small" },
      ui: { theme: "dark", fontSize: "medium" },
      vectorDb: { provider: "lancedb", settings: {} },
    },
    workspaces: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, name: `Workspace ${i + 1}`, slug: `workspace-${i + 1}` })),
    conversations: Array.from({ length: CONVERSATIONS }, (_, i) => conversation(i)),
    sources: {
      anythingllm: { status: "ok", lastSuccessAt: "2026-11-21T12:00:00.000Z", lastAttemptAt: "2026-11-21T12:00:00.000Z", lastError: null },
      librechat: { status: "ok", lastSuccessAt: "2026-11-21T12:00:00.000Z", lastAttemptAt: "2026-11-21T12:00:00.000Z", lastError: null },
    },
  };
}

/** The events' JSON, in order: version 2 ... EVENTS + 1. */
function buildEvents(state) {
  const events = [];
  let next = CONVERSATIONS;
  for (let n = 0; n < EVENTS; n++) {
    const version = n + 2;
    const base = { type: "changed", version, previousVersion: version - 1, timestamp: "2026-11-21T12:00:01.000Z" };
    let changes;
    if (n % 50 === 49) {
      changes = { settings: { ...state.settings, llm: { ...state.settings.llm, temperature: (n % 20) / 10 } } };
    } else if (n % 25 === 24) {
      changes = { sources: { ...state.sources, librechat: { ...state.sources.librechat, status: n % 50 ? "stale" : "ok" } } };
    } else if (n % 10 === 9) {
      changes = { conversations: { added: [conversation(next++)], updated: [], removed: [] } };
    } else {
      changes = { conversations: { added: [], updated: [conversation(n % CONVERSATIONS, n + 1)], removed: [] } };
    }
    events.push(JSON.stringify({ ...base, changes }));
  }
  return events;
}

function sseBytes(state, events) {
  const snapshot = JSON.stringify({ type: "snapshot", version: 1, timestamp: "2026-11-21T12:00:00.000Z", state });
  const parts = [`retry: 3000\n\nevent: snapshot\nid: 1\ndata: ${snapshot}\n\n`];
  events.forEach((data, i) => parts.push(`event: changed\nid: ${i + 2}\ndata: ${data}\n\n`));
  return new TextEncoder().encode(parts.join(""));
}

async function runClient(bytes, finalVersion) {
  const fetch = async () => {
    let offset = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (offset >= bytes.length) return; // stays open, like the service's stream
        controller.enqueue(bytes.subarray(offset, offset + CHUNK));
        offset += CHUNK;
      },
    });
    return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
  };
  const client = createSharedStateClient({ fetch, EventSource: null, shareTabs: false });
  let notifications = 0;
  let started = null; // from the snapshot applied: what is measured is the events
  await new Promise((resolve) => {
    client.subscribe(() => {
      if (started === null) {
        if (client.getStatus().lastEventId === 1) started = performance.now();
        return;
      }
      notifications++;
      if (client.getStatus().lastEventId === finalVersion) resolve();
    });
  });
  const seconds = (performance.now() - started) / 1000;
  client.close();
  if (notifications < EVENTS) throw new Error(`only ${notifications} notifications for ${EVENTS} events`);
  return EVENTS / seconds;
}

function runBaseline(stateJson, events) {
  const started = performance.now();
  let state = JSON.parse(stateJson);
  for (const data of events) {
    const event = JSON.parse(data);
    const copy = JSON.parse(JSON.stringify(state)); // the naive whole-state copy
    for (const [section, change] of Object.entries(event.changes)) {
      if (section === "workspaces" || section === "conversations") {
        for (const item of change.updated) {
          const at = copy[section].findIndex((other) => other.id === item.id);
          if (at >= 0) copy[section][at] = item;
        }
        copy[section] = copy[section].filter((item) => !change.removed.includes(item.id)).concat(change.added);
      } else {
        copy[section] = change;
      }
    }
    copy.version = event.version;
    state = copy;
  }
  if (state.version !== EVENTS + 1) throw new Error("the baseline lost events");
  return EVENTS / ((performance.now() - started) / 1000);
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted.at(-1) };
}

const state = initialState();
const events = buildEvents(state);
const bytes = sseBytes(state, events);
const stateJson = JSON.stringify(state);
const client = [];
const baseline = [];
await runClient(bytes, EVENTS + 1); // warm-up, not counted
for (let run = 0; run < RUNS; run++) {
  client.push(await runClient(bytes, EVENTS + 1));
  baseline.push(runBaseline(stateJson, events));
}
const ours = summary(client);
const theirs = summary(baseline);
const ratio = ours.median / theirs.median;
if (args.includes("--json")) {
  console.log(JSON.stringify({ events: EVENTS, conversations: CONVERSATIONS, runs: RUNS, client: ours, baseline: theirs, ratio }));
} else {
  const fmt = ({ median, min, max }) => `${Math.round(median).toLocaleString("en")} events/s (${Math.round(min).toLocaleString("en")}–${Math.round(max).toLocaleString("en")})`;
  console.log(`JS client store, ${EVENTS} changed events over ${CONVERSATIONS} conversations, median of ${RUNS} runs:`);
  console.log(`  client (SSE parser + store): ${fmt(ours)}`);
  console.log(`  baseline (JSON.parse + whole-state copy): ${fmt(theirs)}`);
  console.log(`  ratio client/baseline: ${ratio.toFixed(2)}×`);
}
