// Hand-written fakes at the client's boundary: a fake service behind `fetch` (with
// ETags, writes, If-Match, Idempotency-Key and an event stream fed by the test), a fake
// EventSource, a fake BroadcastChannel hub and a fake Web Locks manager, and a manual
// clock for timers. Built only on Node's own Response, ReadableStream and EventTarget.

export const API = "/api/shared-state";

export function makeState(overrides = {}) {
  return {
    version: 1,
    syncTimestamp: "2026-11-21T12:00:00.000Z",
    user: { id: 1, username: "ada", email: "ada@example.com", name: "Ada", role: "admin", anythingLLM: null, libreChat: null },
    settings: {
      llm: { provider: "openai", model: "gpt-4o", temperature: 0.7, maxTokens: 4096 },
      embedding: { provider: "openai", model: "text-embedding-3-small" },
      ui: { theme: "dark", fontSize: "medium" },
      vectorDb: { provider: "lancedb", settings: {} },
    },
    workspaces: [{ id: 1, name: "Research", slug: "research" }, { id: 2, name: "Ops", slug: "ops" }],
    conversations: [{ id: "c-1", title: "Quarterly plan" }, { id: "c-2", title: "Hiring" }],
    sources: {
      anythingllm: { status: "ok", lastSuccessAt: null, lastAttemptAt: null, lastError: null },
      librechat: { status: "ok", lastSuccessAt: null, lastAttemptAt: null, lastError: null },
    },
    ...overrides,
  };
}

const clone = (value) => structuredClone(value);

function json(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** One open event stream of the fake service: the test writes SSE text into it. */
class FakeStream {
  constructor(request, onCancel) {
    this.request = request;
    this.closed = false;
    const encoder = new TextEncoder();
    this.body = new ReadableStream({
      start: (controller) => {
        this.controller = controller;
      },
      cancel: () => {
        this.closed = true;
        onCancel(this);
      },
    });
    this.encoder = encoder;
    request.signal?.addEventListener("abort", () => {
      if (this.closed) return;
      this.closed = true;
      try {
        this.controller.error(new DOMException("aborted", "AbortError"));
      } catch {
        // already closed
      }
      onCancel(this);
    });
  }

  /** Raw SSE text, exactly as given. */
  write(text) {
    if (!this.closed) this.controller.enqueue(this.encoder.encode(text));
  }

  send(type, event, id = event.version) {
    this.write(`event: ${type}\nid: ${id}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /** The server ends the stream (a dropped connection, from the client's side). */
  end() {
    if (this.closed) return;
    this.closed = true;
    this.controller.close();
  }
}

/**
 * A fake shared-state service behind a `fetch` function. It holds a state, answers the
 * reads with weak ETags (the state's follows its version, each section's its content),
 * the writes with If-Match/Idempotency-Key semantics, and records every request.
 */
export class FakeService {
  constructor(state = makeState()) {
    this.state = clone(state);
    this.requests = [];
    this.streams = [];
    this.idempotent = new Map();
    this.writeFailure = null; // {status, body} to answer writes with
    this.failNextWriteNetwork = 0; // writes that throw like a dropped connection (after landing)
    this.streamAnswer = null; // {status, body} to answer /events with instead of a stream
    this.streamWaiters = [];
    this.requestWaiters = [];
    this.fetch = this.fetch.bind(this);
  }

  etagOf(value) {
    const text = JSON.stringify(value);
    let hash = 0;
    for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
    return `W/"${(hash >>> 0).toString(16)}"`;
  }

  stateEtag() {
    return `W/"v${this.state.version}"`;
  }

  /** Changes the state as a sync would, and returns the `changed` event it means. */
  change(mutate) {
    const before = clone(this.state);
    mutate(this.state);
    this.state.version = before.version + 1;
    return changedEvent(before, this.state);
  }

  /** The next stream the client opens. */
  nextStream() {
    return new Promise((resolve) => this.streamWaiters.push(resolve));
  }

  /** Resolves with the next request whose path (without query) is `path`. */
  nextRequest(path, method = "GET") {
    return new Promise((resolve) => this.requestWaiters.push({ path, method, resolve }));
  }

  openStreams() {
    return this.streams.filter((stream) => !stream.closed);
  }

  async fetch(url, init = {}) {
    const parsed = new URL(url, "http://service.test");
    const method = init.method ?? "GET";
    const headers = new Headers(init.headers ?? {});
    const request = { url: String(url), path: parsed.pathname, query: parsed.searchParams, method, headers, body: init.body, signal: init.signal };
    this.requests.push(request);
    for (const waiter of this.requestWaiters.splice(0)) {
      if (waiter.path === request.path && waiter.method === method) waiter.resolve(request);
      else this.requestWaiters.push(waiter);
    }
    if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
    if (parsed.pathname === `${API}/events`) return this.openStream(request);
    if (method === "GET") return this.read(request);
    return this.write(request);
  }

  openStream(request) {
    if (this.streamAnswer) return json(this.streamAnswer.status, this.streamAnswer.body);
    const stream = new FakeStream(request, () => {});
    this.streams.push(stream);
    const waiters = this.streamWaiters.splice(0);
    // The stream's first bytes, as the service sends them.
    stream.write("retry: 3000\n\n");
    queueMicrotask(() => waiters.forEach((resolve) => resolve(stream)));
    return new Response(stream.body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  }

  read(request) {
    const sub = request.path.slice(API.length);
    let body;
    let etag;
    if (sub === "") {
      body = this.state;
      etag = this.stateEtag();
    } else if (sub === "/settings" || sub === "/user" || sub === "/workspaces" || sub === "/conversations") {
      body = this.state[sub.slice(1)];
      etag = this.etagOf(body);
    } else if (sub.startsWith("/workspaces/") || sub.startsWith("/conversations/")) {
      const [, section, id] = sub.split("/");
      const key = decodeURIComponent(id);
      body = this.state[section].find((item) => String(item.id) === key || item.slug === key);
      if (body === undefined) {
        const noun = section === "workspaces" ? "workspace" : "conversation";
        return json(404, { detail: `No ${noun} has the id or slug '${key}'.`, code: "not_found" });
      }
      etag = this.etagOf(body);
    } else if (sub === "/status") {
      body = { version: this.state.version, syncTimestamp: this.state.syncTimestamp, sources: this.state.sources, syncIntervalS: 30, subscribers: this.openStreams().length, uptimeS: 1 };
      etag = this.etagOf(body);
    } else {
      return json(404, { detail: "Not Found", code: "not_found" });
    }
    if (request.headers.get("If-None-Match") === etag) {
      return new Response(null, { status: 304, headers: { ETag: etag } });
    }
    return json(200, clone(body), { ETag: etag });
  }

  write(request) {
    const sub = request.path.slice(API.length);
    if (sub === "/sync") {
      return json(200, { version: this.state.version, changed: [], sources: this.state.sources, durationMs: 1 });
    }
    const section = sub === "/llm-settings" ? "llm" : sub === "/ui-settings" ? "ui" : null;
    if (section === null) return json(404, { detail: "Not Found", code: "not_found" });
    const key = request.headers.get("Idempotency-Key");
    if (key && this.idempotent.has(key)) {
      const first = this.idempotent.get(key);
      return this.maybeDrop(json(first.status, first.body));
    }
    const ifMatch = request.headers.get("If-Match");
    if (ifMatch && ifMatch !== "*" && ifMatch !== this.etagOf(this.state.settings) && ifMatch !== this.stateEtag()) {
      return json(412, { detail: "The state changed since that ETag was read (If-Match); nothing was written.", code: "version_mismatch" });
    }
    let answer;
    if (this.writeFailure) {
      answer = this.writeFailure;
    } else {
      const patch = JSON.parse(request.body);
      const event = this.change((state) => {
        state.settings[section] = { ...state.settings[section], ...patch };
      });
      this.lastWriteEvent = event;
      answer = { status: 200, body: clone(this.state.settings[section]) };
    }
    if (key) this.idempotent.set(key, answer);
    return this.maybeDrop(json(answer.status, answer.body));
  }

  maybeDrop(response) {
    if (this.failNextWriteNetwork > 0) {
      this.failNextWriteNetwork--;
      throw new TypeError("fetch failed");
    }
    return response;
  }
}

/** The `changed` event between two states, as the service builds it. */
export function changedEvent(before, after, timestamp = "2026-11-21T12:00:01.000Z") {
  const changes = {};
  for (const section of ["user", "settings", "sources"]) {
    if (JSON.stringify(before[section]) !== JSON.stringify(after[section])) changes[section] = clone(after[section]);
  }
  for (const section of ["workspaces", "conversations"]) {
    const old = new Map(before[section].map((item) => [String(item.id), item]));
    const now = new Map(after[section].map((item) => [String(item.id), item]));
    const added = after[section].filter((item) => !old.has(String(item.id)));
    const updated = after[section].filter((item) => old.has(String(item.id)) && JSON.stringify(old.get(String(item.id))) !== JSON.stringify(item));
    const removed = before[section].filter((item) => !now.has(String(item.id))).map((item) => item.id);
    if (added.length || updated.length || removed.length) changes[section] = { added: clone(added), updated: clone(updated), removed };
  }
  return { type: "changed", version: after.version, previousVersion: before.version, timestamp, changes };
}

export function snapshotEvent(state) {
  return { type: "snapshot", version: state.version, timestamp: "2026-11-21T12:00:00.000Z", state: clone(state) };
}

/** A fake EventSource: records instances; the test opens, sends and fails them. */
export class FakeEventSource extends EventTarget {
  static instances = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.onopen = null;
    this.onerror = null;
    FakeEventSource.instances.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  emit(type, event, id = String(event.version)) {
    const message = new MessageEvent(type, { data: typeof event === "string" ? event : JSON.stringify(event), lastEventId: id });
    this.dispatchEvent(message);
  }
  fail() {
    this.readyState = 0;
    this.onerror?.(new Event("error"));
  }
  close() {
    this.readyState = 2;
  }
}

/** BroadcastChannel fakes sharing one hub: a message reaches every other open channel
 * of the same name, asynchronously (structured-cloned), as browsers do. */
export class ChannelHub {
  constructor() {
    this.channels = new Set();
    const hub = this;
    this.BroadcastChannel = class {
      constructor(name) {
        this.name = name;
        this.onmessage = null;
        this.closed = false;
        hub.channels.add(this);
      }
      postMessage(data) {
        if (this.closed) throw new DOMException("closed", "InvalidStateError");
        const copy = structuredClone(data);
        for (const other of hub.channels) {
          if (other !== this && other.name === this.name) {
            setImmediate(() => {
              if (!other.closed) other.onmessage?.({ data: copy });
            });
          }
        }
      }
      close() {
        this.closed = true;
        hub.channels.delete(this);
      }
    };
  }
}

/** A Web Locks manager: exclusive locks by name, granted in request order, released
 * when the callback's promise settles; `signal` aborts a request still waiting. */
export class FakeLocks {
  constructor() {
    this.held = new Map();
    this.queues = new Map();
  }
  request(name, options, callback) {
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      options?.signal?.addEventListener("abort", () => {
        const at = queue.indexOf(entry);
        if (at >= 0) {
          queue.splice(at, 1);
          reject(new DOMException("aborted", "AbortError"));
        }
      });
      queue.push(entry);
      this.grant(name);
    });
  }
  grant(name) {
    if (this.held.has(name)) return;
    const queue = this.queues.get(name);
    const entry = queue?.shift();
    if (!entry) return;
    this.held.set(name, entry);
    Promise.resolve()
      .then(() => entry.callback({ name, mode: "exclusive" }))
      .then(entry.resolve, entry.reject)
      .finally(() => {
        this.held.delete(name);
        this.grant(name);
      });
  }
  holder(name) {
    return this.held.get(name);
  }
}

/** Resolves once `predicate()` is true, checked after each macrotask (bounded). */
export async function until(predicate, what = "condition", turns = 2000) {
  for (let i = 0; i < turns; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A manual timer queue (setTimeout/clearTimeout) the test advances. */
export class ManualTimers {
  constructor() {
    this.now = 0;
    this.pending = new Map();
    this.nextId = 1;
    this.setTimeout = (fn, ms = 0) => {
      const id = this.nextId++;
      this.pending.set(id, { fn, at: this.now + ms, ms });
      return id;
    };
    this.clearTimeout = (id) => {
      this.pending.delete(id);
    };
  }
  delays() {
    return [...this.pending.values()].map((timer) => timer.ms);
  }
  /** Runs every timer due within `ms`, in time order. */
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let soonest = null;
      for (const [id, timer] of this.pending) if (timer.at <= end && (!soonest || timer.at < soonest[1].at)) soonest = [id, timer];
      if (!soonest) break;
      this.pending.delete(soonest[0]);
      this.now = soonest[1].at;
      soonest[1].fn();
    }
    this.now = end;
  }
}
