// shared-state-client: a dependency-free live store over the shared-state sidecar.
//
// One ES module, no build step. `createSharedStateClient(options)` returns a store fit
// for React's `useSyncExternalStore` (getSnapshot/subscribe), the reads and writes of
// contract §9, and keeps itself current over one event stream (§8). Everything the
// browser or Node provides (fetch, EventSource, BroadcastChannel, Web Locks, storage,
// timers) is injectable, so the same code runs in a page, in Node and under fakes.

const API = "/api/shared-state";
const SECTIONS = ["user", "settings", "workspaces", "conversations", "sources"];
const LIST_SECTIONS = new Set(["workspaces", "conversations"]);
const DEFAULT_RETRY_MS = 1000;
const RETRY_CAP_MS = 30000;
const HEALTHY_AFTER_MS = 5000;
const FAILURES_BEFORE_POLLING = 3;
const MAX_EVENT_BYTES = 32 * 1024 * 1024;
const ETAG_CACHE_ENTRIES = 256;
const PERSIST_DELAY_MS = 500;
const STREAM_UNAVAILABLE = new Set([404, 405, 501]);
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30000;
const STREAM_SILENCE_MS = 45000; // three of the service's 15 s heartbeats

/** An error answer of the service, or a failure to reach it (status 0). */
export class SharedStateError extends Error {
  constructor(message, { status = 0, code = "network_error", detail, results, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "SharedStateError";
    this.status = status;
    this.code = code;
    this.detail = detail === undefined ? message : detail;
    this.results = results;
  }
}

// --- Structural sharing -----------------------------------------------------------

/**
 * `next`, reusing every part of `prev` that is deep-equal to the matching part of
 * `next` (TanStack Query's `replaceEqualDeep`): returns `prev` itself when all is equal.
 */
export function replaceEqualDeep(prev, next) {
  if (prev === next) return prev;
  const prevArray = Array.isArray(prev);
  if (prevArray !== Array.isArray(next)) return next;
  if (prevArray) {
    const copy = new Array(next.length);
    let same = prev.length === next.length;
    for (let i = 0; i < next.length; i++) {
      copy[i] = replaceEqualDeep(prev[i], next[i]);
      if (copy[i] !== prev[i]) same = false;
    }
    return same ? prev : copy;
  }
  if (!isPlainObject(prev) || !isPlainObject(next)) return next;
  const prevKeys = Object.keys(prev);
  const nextKeys = Object.keys(next);
  let same = prevKeys.length === nextKeys.length;
  const copy = {};
  for (const key of nextKeys) {
    copy[key] = replaceEqualDeep(prev[key], next[key]);
    if (copy[key] !== prev[key] || !Object.hasOwn(prev, key)) same = false;
  }
  return same ? prev : copy;
}

function shallowSame(a, b) {
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  return keys.every((key) => Object.hasOwn(a, key) && a[key] === b[key]);
}

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const listIndexes = new WeakMap(); // list -> Map(String(id) -> position), built lazily

function indexOf(list) {
  let index = listIndexes.get(list);
  if (index === undefined) {
    index = new Map();
    for (let i = 0; i < list.length; i++) index.set(String(list[i]?.id), i);
    listIndexes.set(list, index);
  }
  return index;
}

/** A list section after `{added, updated, removed}`; unchanged items keep their refs.
 * Ids compare as strings (the service's keys: 1 and "1" are one item). New items go
 * first in `conversations` (LibreChat lists the newest first), last elsewhere. */
function patchList(list, change, addAtFront) {
  const old = Array.isArray(list) ? list : [];
  if (change.removed.length === 0) {
    // The common case, in place: the positions come from an index kept per list.
    const index = indexOf(old);
    let copy = null;
    const fresh = new Map();
    for (const item of [...change.updated, ...change.added]) {
      const key = String(item.id);
      const at = index.get(key);
      if (at === undefined) {
        fresh.set(key, item);
        continue;
      }
      const current = (copy ?? old)[at];
      const merged = replaceEqualDeep(current, item);
      if (merged !== current) {
        copy ??= old.slice();
        copy[at] = merged;
      }
    }
    if (fresh.size === 0) {
      if (copy === null) return old;
      listIndexes.set(copy, index); // same ids at the same positions
      return copy;
    }
    const base = copy ?? old;
    return addAtFront ? [...fresh.values(), ...base] : [...base, ...fresh.values()];
  }
  const removed = new Set(change.removed.map(String));
  const incoming = new Map();
  for (const item of [...change.updated, ...change.added]) incoming.set(String(item.id), item);
  const seen = new Set();
  const kept = [];
  let touched = removed.size > 0;
  for (const item of old) {
    const key = String(item?.id);
    if (removed.has(key)) continue;
    const replacement = incoming.get(key);
    if (replacement === undefined) {
      kept.push(item);
    } else {
      seen.add(key);
      const merged = replaceEqualDeep(item, replacement);
      if (merged !== item) touched = true;
      kept.push(merged);
    }
  }
  const fresh = [];
  for (const [key, item] of incoming) if (!seen.has(key) && !removed.has(key)) fresh.push(item);
  if (fresh.length === 0 && !touched && kept.length === old.length) return old;
  return addAtFront ? [...fresh, ...kept] : [...kept, ...fresh];
}

// --- Server-Sent Events parser (WHATWG "event stream interpretation") --------------

/**
 * An incremental SSE parser: `push(text)` takes decoded chunks, calls
 * `onEvent({type, data, id})` per dispatched event, `onRetry(ms)` per valid `retry:`
 * and `onComment(text)` per comment. CR, LF and CRLF end lines, also split across
 * chunks. Throws a SharedStateError when one event grows past `maxBytes`.
 */
export function createSSEParser({ onEvent, onRetry = () => {}, onComment = () => {}, maxBytes = MAX_EVENT_BYTES }) {
  let buffer = "";
  let data = [];
  let dataSize = 0;
  let type = "";
  let lastId = "";
  let pendingCR = false;
  let first = true;

  function line(text) {
    if (text === "") {
      if (data.length > 0) {
        onEvent({ type: type || "message", data: data.join("\n"), id: lastId });
      }
      data = [];
      dataSize = 0;
      type = "";
      return;
    }
    if (text.charCodeAt(0) === 58 /* : */) {
      onComment(text.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "data") {
      dataSize += value.length + 1;
      if (dataSize > maxBytes) throw tooLarge();
      data.push(value);
    } else if (field === "event") {
      type = value;
    } else if (field === "id") {
      if (!value.includes("\0")) lastId = value;
    } else if (field === "retry") {
      if (/^[0-9]+$/.test(value)) onRetry(Number(value));
    }
  }

  function tooLarge() {
    return new SharedStateError("An event of the stream is larger than the client accepts.", {
      code: "event_too_large",
    });
  }

  return {
    push(chunk) {
      let text = chunk;
      if (first && text.length > 0) {
        first = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      if (pendingCR && text.charCodeAt(0) === 10) text = text.slice(1);
      pendingCR = false;
      let start = 0;
      for (let i = 0; i < text.length; i++) {
        const code = text.charCodeAt(i);
        if (code !== 10 && code !== 13) continue;
        line(buffer + text.slice(start, i));
        buffer = "";
        if (code === 13) {
          if (i + 1 === text.length) pendingCR = true;
          else if (text.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      buffer += text.slice(start);
      if (buffer.length + dataSize > maxBytes) throw tooLarge();
    },
    /** The stream ended: an incomplete event is discarded, as the standard says. */
    end() {
      buffer = "";
      data = [];
      dataSize = 0;
      type = "";
    },
  };
}

// --- Event validation ---------------------------------------------------------------

function isVersion(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

function validSnapshot(event) {
  return isPlainObject(event.state) && isVersion(event.version);
}

function validChanged(event) {
  if (!isVersion(event.version) || !isVersion(event.previousVersion)) return false;
  if (!isPlainObject(event.changes)) return false;
  for (const [section, change] of Object.entries(event.changes)) {
    if (!SECTIONS.includes(section)) continue;
    if (LIST_SECTIONS.has(section)) {
      if (!isPlainObject(change)) return false;
      const { added = [], updated = [], removed = [] } = change;
      if (!Array.isArray(added) || !Array.isArray(updated) || !Array.isArray(removed)) return false;
      for (const item of [...added, ...updated]) {
        if (!isPlainObject(item) || (typeof item.id !== "string" && typeof item.id !== "number")) {
          return false;
        }
      }
      if (!removed.every((id) => typeof id === "string" || typeof id === "number")) return false;
    } else if (section === "settings" || section === "sources") {
      if (!isPlainObject(change)) return false;
    } else if (change !== null && !isPlainObject(change)) {
      return false;
    }
  }
  return true;
}

// --- Small helpers ----------------------------------------------------------------------

/** The body as text, refusing more than `limit` bytes (a hostile or broken answer). */
async function readBounded(response, limit) {
  const declared = Number(response.headers?.get?.("Content-Length"));
  if (declared > limit) throw new RangeError("body too large");
  if (!response.body?.getReader) return response.text();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      reader.cancel().catch(() => {});
      throw new RangeError("body too large");
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

function randomKey() {
  const crypto = globalThis.crypto;
  // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // a sandboxed frame or blocked cookies: storage access throws
  }
}

function errorToWire(error) {
  if (error == null) return null;
  return { message: error.message, status: error.status, code: error.code, detail: error.detail };
}

function errorFromWire(wire) {
  if (wire == null) return null;
  return new SharedStateError(String(wire.message ?? ""), wire);
}

function abortError() {
  return new SharedStateError("The client was closed.", { code: "closed" });
}

// --- The client ---------------------------------------------------------------------------

/**
 * A live store of the shared state plus the service's reads and writes (contract §9).
 * See README.md for the options; index.d.ts for the types.
 */
export function createSharedStateClient(options = {}) {
  const baseUrl = String(options.baseUrl ?? "").replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
  const EventSourceImpl = options.EventSource ?? globalThis.EventSource;
  const sections = Array.isArray(options.sections) && options.sections.length > 0
    ? [...new Set(options.sections.map(String))].sort()
    : null;
  for (const name of sections ?? []) {
    if (!SECTIONS.includes(name)) {
      throw new TypeError(`createSharedStateClient: unknown section ${JSON.stringify(name)}; known: ${SECTIONS.join(", ")}`);
    }
  }
  const live = options.live !== false;
  const pollIntervalMs = Math.max(50, Number(options.pollIntervalMs ?? 5000) || 5000);
  const retryCapMs = Number(options.retryCapMs ?? RETRY_CAP_MS);
  const healthyAfterMs = Number(options.healthyAfterMs ?? HEALTHY_AFTER_MS);
  const requestTimeoutMs = Number(options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
  const streamSilenceMs = Number(options.streamSilenceMs ?? STREAM_SILENCE_MS);
  const random = options.random ?? Math.random;
  const timers = {
    set: options.setTimeout ?? globalThis.setTimeout.bind(globalThis),
    clear: options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis),
  };
  const now = options.now ?? (() => Date.now());
  const doc = options.document ?? globalThis.document;
  const win = options.window ?? globalThis.window;
  const scope = sections ? sections.join(",") : "*";
  const storageKey = `shared-state:${baseUrl}:${scope}`;
  const storage = options.persist ? (options.storage ?? defaultStorage()) : null;
  const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel;
  const locks = options.locks ?? globalThis.navigator?.locks;
  const sharing = options.shareTabs !== false && live && typeof Channel === "function" &&
    typeof locks?.request === "function";
  if (typeof fetchImpl !== "function") {
    throw new TypeError("createSharedStateClient: no fetch given and none found");
  }
  const tabId = randomKey();

  // --- store ---------------------------------------------------------------------------
  const listeners = new Set();
  const eventListeners = new Set();
  const serverSnapshot = options.initialState ?? null;
  let confirmed = null; // the state as the service last told it
  let shown = null; // confirmed plus the optimistic patches of writes in flight
  let fresh = false; // the confirmed state came from the service in this session
  let status = {
    connection: "idle", stale: false, error: null, lastEventId: null, leader: !sharing,
  };
  let pending = []; // [{id, section, patch}] optimistic patches, in order
  let settingsChanges = 0; // counts settings changes applied from the service
  let dirty = false;

  if (serverSnapshot) {
    confirmed = pickSections(serverSnapshot);
  } else if (storage) {
    const saved = readPersisted();
    if (saved) {
      confirmed = saved;
      status = { ...status, stale: true };
    }
  }
  shown = confirmed;

  function pickSections(state) {
    if (!isPlainObject(state)) return null;
    if (!sections) return state;
    const picked = { version: state.version, syncTimestamp: state.syncTimestamp ?? null };
    for (const section of sections) if (Object.hasOwn(state, section)) picked[section] = state[section];
    return picked;
  }

  function recompute() {
    let next = confirmed;
    if (next && pending.length > 0) {
      let settings = next.settings ?? {};
      for (const { section, patch } of pending) {
        settings = { ...settings, [section]: { ...(settings[section] ?? {}), ...patch } };
      }
      next = { ...next, settings: replaceEqualDeep(shown?.settings, settings) };
      if (shallowSame(shown, next)) next = shown;
    }
    if (next !== shown) {
      shown = next;
      dirty = true;
      schedulePersist();
    }
  }

  function setStatus(patch) {
    let changed = false;
    for (const key of Object.keys(patch)) if (status[key] !== patch[key]) changed = true;
    if (!changed) return;
    status = { ...status, ...patch };
    dirty = true;
  }

  function refreshStale() {
    const healthy = status.connection === "live" || status.connection === "idle" ||
      (status.connection === "polling" && pollOk) || !live;
    setStatus({ stale: shown !== null && !(fresh && healthy) });
  }

  function emit() {
    refreshStale();
    if (!dirty) return;
    dirty = false;
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (error) {
        queueMicrotask(() => { throw error; }); // a listener's bug must not stop the others
      }
    }
  }

  function setConfirmed(next) {
    if (next === confirmed) return;
    if (confirmed && next && confirmed.settings !== next.settings) {
      settingsChanges++;
      settingsEtagCurrent = false; // a write first revalidates it
    }
    confirmed = next;
    recompute();
  }

  /** Takes a whole state from the service. A stream's snapshot and a poll say what
   * the service holds now (also a lower version: a service restarted without its
   * snapshot file counts again from 1); a read's answer may be overtaken by the
   * stream's events, so an older one is dropped. */
  function takeState(state, version = state?.version, { authoritative = false } = {}) {
    const picked = pickSections(state);
    if (!picked || !isVersion(version)) return false;
    if (!authoritative && fresh && isVersion(confirmed?.version) && version < confirmed.version) {
      return false; // an older answer arriving late
    }
    setConfirmed(replaceEqualDeep(confirmed, picked));
    fresh = true;
    setStatus({ lastEventId: authoritative ? version : Math.max(version, status.lastEventId ?? 0) });
    return true;
  }

  /** Applies one §8 event; false when it was ignored (and a refetch is asked for). */
  function applyEvent(event, { broadcast = false } = {}) {
    if (!isPlainObject(event)) return false;
    if (event.type === "snapshot") {
      if (!validSnapshot(event)) return false;
      if (!takeState(event.state, event.version, { authoritative: true })) return false;
    } else if (event.type === "changed") {
      if (!validChanged(event)) {
        requestRefetch();
        return false;
      }
      const current = fresh && confirmed && isVersion(confirmed.version) ? confirmed.version : null;
      if (current !== null && event.version <= current) return false; // already held
      // With `sections` the service skips versions that changed none of them, so a
      // later previousVersion is not a gap there; without, anything else is.
      const gap = current === null ||
        (sections ? event.previousVersion < current : event.previousVersion !== current);
      if (gap) {
        requestRefetch();
        return false;
      }
      const next = { ...confirmed, version: event.version };
      for (const [section, change] of Object.entries(event.changes)) {
        if (!SECTIONS.includes(section)) continue;
        if (sections && !sections.includes(section)) continue;
        if (LIST_SECTIONS.has(section)) {
          const normalised = {
            added: change.added ?? [], updated: change.updated ?? [], removed: change.removed ?? [],
          };
          next[section] = patchList(confirmed[section], normalised, section === "conversations");
        } else {
          next[section] = replaceEqualDeep(confirmed[section], change);
        }
      }
      setConfirmed(next);
      setStatus({ lastEventId: event.version });
    } else {
      return false; // unknown type: ignored
    }
    for (const fn of [...eventListeners]) {
      try {
        fn(event);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
    if (sharing && leading && !broadcast) post({ t: "event", event });
    return true;
  }

  // --- persistence -----------------------------------------------------------------
  let persistTimer = null;

  function readPersisted() {
    try {
      const text = storage.getItem(storageKey);
      if (typeof text !== "string") return null;
      const saved = JSON.parse(text);
      return isPlainObject(saved) && isVersion(saved.version) ? saved : null;
    } catch {
      return null; // blocked, or corrupt JSON: start without it
    }
  }

  function schedulePersist() {
    if (!storage || closed || persistTimer !== null) return;
    persistTimer = timers.set(flushPersist, PERSIST_DELAY_MS);
  }

  function flushPersist() {
    if (persistTimer !== null) timers.clear(persistTimer);
    persistTimer = null;
    if (!storage || !confirmed || !fresh) return;
    try {
      storage.setItem(storageKey, JSON.stringify(confirmed));
    } catch {
      // full or blocked storage: persisting is best effort
    }
  }

  // --- HTTP ------------------------------------------------------------------------
  const controllers = new Set();
  const etags = new Map(); // path -> {etag, body}
  const SETTINGS_PATH = `${API}/settings`;
  let settingsEtagCurrent = false; // the cached settings ETag is known current

  async function authHeaders() {
    const token = await currentToken();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  async function currentToken() {
    try {
      return typeof options.token === "function" ? await options.token() : options.token;
    } catch (error) {
      throw new SharedStateError("The token function failed.", { code: "token_unavailable", cause: error });
    }
  }

  async function request(method, path, { body, headers = {}, conditional = method === "GET" } = {}) {
    if (closed) throw abortError();
    const attempt = (controller, isTimedOut) =>
      requestOnce(method, path, { body, headers, conditional }, controller, isTimedOut);
    const controller = new AbortController();
    controllers.add(controller);
    let timedOut = false;
    // The real clock, not the injected one: a deadline is not part of the live schedule.
    const deadline = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, requestTimeoutMs);
    try {
      return await attempt(controller, () => timedOut);
    } finally {
      clearTimeout(deadline);
      controllers.delete(controller);
    }
  }

  function timeoutError() {
    return new SharedStateError(`The service did not answer within ${requestTimeoutMs} ms.`, {
      code: "timeout",
    });
  }

  async function requestOnce(method, path, { body, headers, conditional }, controller, isTimedOut) {
    const cached = conditional ? etags.get(path) : undefined;
    const sent = { Accept: "application/json", ...(await authHeaders()), ...headers };
    if (cached) sent["If-None-Match"] = cached.etag;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      if (closed) throw abortError();
      response = await fetchImpl(baseUrl + path, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (error) {
      if (closed) throw abortError();
      if (isTimedOut()) throw timeoutError();
      throw new SharedStateError("The shared-state service could not be reached.", {
        code: "network_error", cause: error,
      });
    }
    if (response.status === 304 && cached) {
      if (path === SETTINGS_PATH) settingsEtagCurrent = true;
      etags.delete(path);
      etags.set(path, cached); // most recently used last
      return { status: 304, body: cached.body, etag: cached.etag };
    }
    let parsed;
    let text = "";
    try {
      text = await readBounded(response, MAX_BODY_BYTES);
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch (error) {
      if (closed) throw abortError();
      if (isTimedOut()) throw timeoutError();
      throw new SharedStateError(
        `The service answered ${response.status} with a body that is not JSON, or too large.`,
        { status: response.status, code: "invalid_response", cause: error },
      );
    }
    if (!response.ok) throw errorFromAnswer(response.status, parsed);
    const etag = response.headers?.get?.("ETag");
    if (conditional && etag) {
      if (path === SETTINGS_PATH) settingsEtagCurrent = true;
      etags.delete(path);
      etags.set(path, { etag, body: parsed });
      while (etags.size > ETAG_CACHE_ENTRIES) etags.delete(etags.keys().next().value);
    }
    return { status: response.status, body: parsed, etag };
  }

  function errorFromAnswer(statusCode, body) {
    const detail = body?.detail;
    let message = typeof detail === "string" ? detail : undefined;
    if (Array.isArray(detail)) {
      message = detail.map((entry) => {
        const where = Array.isArray(entry?.loc) ? entry.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${entry?.msg}` : String(entry?.msg);
      }).join("; ");
    }
    const code = typeof body?.code === "string"
      ? body.code
      : statusCode === 422 ? "validation_error" : `http_${statusCode}`;
    return new SharedStateError(message || `The service answered ${statusCode}.`, {
      status: statusCode,
      code,
      detail: detail ?? message,
      results: isPlainObject(body?.results) ? body.results : undefined,
    });
  }

  async function read(path) {
    return (await request("GET", path)).body;
  }

  /** The state from the service; the store takes it unless the live stream is
   * feeding it (then the stream's own events arrive, and onEvent sees each). */
  async function getState({ force = false } = {}) {
    const answer = await request("GET", API);
    if ((force || status.connection !== "live" || !fresh) && takeState(answer.body)) emit();
    return answer.body;
  }

  let refetching = null;
  function requestRefetch() {
    if (refetching || closed) return refetching;
    refetching = getState({ force: true })
      .catch((error) => {
        if (!closed) {
          setStatus({ error });
          emit();
        }
      })
      .finally(() => { refetching = null; });
    return refetching;
  }

  // --- writes ------------------------------------------------------------------------
  let writeChain = Promise.resolve();

  function write(section, path, patch) {
    const entry = { id: randomKey(), section, patch };
    if (isPlainObject(patch)) {
      pending = [...pending, entry];
      recompute();
      emit();
    }
    // Writes go out one at a time: a second write would otherwise carry an If-Match
    // that the first one's success has just made stale.
    const run = writeChain.then(() => send(entry, path, patch));
    writeChain = run.catch(() => {});
    return run.finally(() => {
      const before = pending.length;
      pending = pending.filter((other) => other !== entry);
      if (pending.length !== before) recompute();
      if (!closed) emit();
    });
  }

  /** The settings ETag for If-Match: the cached one while nothing changed the
   * settings, else revalidated with a conditional GET (a 304 keeps it). */
  async function currentSettingsEtag() {
    const cached = etags.get(SETTINGS_PATH);
    if (cached && settingsEtagCurrent) return cached.etag;
    return (await request("GET", SETTINGS_PATH)).etag;
  }

  async function send(entry, path, patch) {
    if (closed) throw abortError();
    const ifMatch = await currentSettingsEtag();
    const headers = { "Idempotency-Key": entry.id };
    if (ifMatch) headers["If-Match"] = ifMatch;
    const seen = settingsChanges;
    let answer;
    for (let attempt = 0; ; attempt++) {
      try {
        answer = await request("POST", path, { body: patch, headers, conditional: false });
        break;
      } catch (error) {
        // One retry, with the same key, when the service could not be reached: it
        // replays the first answer if the first attempt did land.
        if (error.code === "network_error" && attempt === 0 && !closed) continue;
        if (error.status === 412) {
          settingsEtagCurrent = false;
          await requestRefetch();
          throw new SharedStateError(error.message, {
            status: 412, code: "version_mismatch", detail: error.detail,
          });
        }
        throw error;
      }
    }
    // The write's answer is the new section, unless the stream has already brought a
    // later settings change, which is then the newer truth.
    if (confirmed && seen === settingsChanges && isPlainObject(answer.body)) {
      const settings = { ...(confirmed.settings ?? {}), [entry.section]: answer.body };
      const next = { ...confirmed, settings: replaceEqualDeep(confirmed.settings, settings) };
      setConfirmed(next);
    }
    settingsEtagCurrent = false;
    return answer.body;
  }

  // --- live: the stream, its back-off and the polling fallback -------------------------
  let closed = false;
  let started = false;
  let leading = !sharing;
  let paused = false;
  let failures = 0;
  let retryMs = DEFAULT_RETRY_MS;
  let reconnectTimer = null;
  let pollTimer = null;
  let streamStop = null; // ends the current connection
  let polling = false;
  let pollOk = false; // the last poll was answered

  function start() {
    if (started || closed || !live) return;
    started = true;
    addBrowserListeners();
    if (sharing) joinTabs();
    else connect();
  }

  function backoffMs() {
    const ceiling = Math.min(retryCapMs, retryMs * 2 ** Math.min(failures, 20));
    return Math.floor(random() * ceiling);
  }

  function scheduleReconnect() {
    if (closed || paused || !leading || reconnectTimer !== null) return;
    reconnectTimer = timers.set(() => {
      reconnectTimer = null;
      connect();
    }, backoffMs());
  }

  function streamUrl(forEventSource) {
    const query = [];
    if (sections) query.push(`sections=${encodeURIComponent(sections.join(","))}`);
    const cursor = fresh ? status.lastEventId : null;
    if (forEventSource && cursor !== null) query.push(`lastEventId=${cursor}`);
    return `${baseUrl}${API}/events${query.length ? `?${query.join("&")}` : ""}`;
  }

  function onStreamMessage(message) {
    if (message.type !== "snapshot" && message.type !== "changed") return true; // unknown: ignored
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return false;
    }
    if (!isPlainObject(event) || event.type !== message.type) return false;
    const applied = applyEvent(event);
    emit();
    return applied;
  }

  function connected() {
    setStatus({ connection: "live", error: null });
    stopPolling();
    emit();
    if (sharing && leading) postStatus();
  }

  function connectionEnded(openedAt, gotEvent, error, unavailable) {
    streamStop = null;
    if (closed || paused) return;
    const healthy = openedAt !== null && (gotEvent || now() - openedAt >= healthyAfterMs);
    failures = healthy ? 0 : failures + 1;
    setStatus({ connection: polling ? status.connection : "connecting", error: error ?? status.error });
    if (!polling && (unavailable || failures >= FAILURES_BEFORE_POLLING)) startPolling();
    emit();
    if (sharing && leading) postStatus();
    scheduleReconnect();
  }

  let connecting = false;
  async function connect() {
    if (closed || paused || !leading || streamStop || connecting) return;
    if (reconnectTimer !== null) timers.clear(reconnectTimer);
    reconnectTimer = null;
    setStatus({ connection: polling ? status.connection : "connecting" });
    emit();
    let token;
    connecting = true;
    try {
      token = await currentToken();
    } catch (error) {
      connecting = false;
      connectionEnded(null, false, error, false);
      return;
    }
    connecting = false;
    if (closed || paused || !leading || streamStop) return;
    // EventSource cannot send a header: with a token the stream is read with fetch,
    // which keeps the token out of URLs (and so out of access logs).
    if (typeof EventSourceImpl === "function" && !token) connectEventSource();
    else connectFetch(token);
  }

  function connectEventSource() {
    let openedAt = null;
    let gotEvent = false;
    let done = false;
    const source = new EventSourceImpl(streamUrl(true));
    const finish = (error) => {
      if (done) return;
      done = true;
      source.close();
      connectionEnded(openedAt, gotEvent, error, false);
    };
    const onMessage = (message) => {
      if (done) return;
      gotEvent = true;
      onStreamMessage({ type: message.type, data: message.data });
    };
    source.onopen = () => {
      if (done) return;
      openedAt = now();
      connected();
    };
    // EventSource reconnects by itself, without back-off: we close it and do our own.
    source.onerror = () => finish(
      new SharedStateError("The event stream was interrupted.", { code: "stream_error" }),
    );
    source.addEventListener("snapshot", onMessage);
    source.addEventListener("changed", onMessage);
    streamStop = () => {
      done = true;
      source.close();
    };
  }

  function connectFetch(token) {
    const controller = new AbortController();
    controllers.add(controller);
    let stopped = false;
    streamStop = () => {
      stopped = true;
      controller.abort();
    };
    let openedAt = null;
    let gotEvent = false;
    let watchdog = null;
    let silent = false;
    const headers = { Accept: "text/event-stream" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (fresh && status.lastEventId !== null) headers["Last-Event-ID"] = String(status.lastEventId);
    (async () => {
      let error = null;
      let unavailable = false;
      try {
        const response = await fetchImpl(streamUrl(false), { headers, signal: controller.signal });
        const type = response.headers?.get?.("Content-Type") ?? "";
        if (!response.ok || !type.includes("text/event-stream")) {
          let body;
          try {
            body = JSON.parse(await response.text());
          } catch {
            body = undefined;
          }
          unavailable = STREAM_UNAVAILABLE.has(response.status);
          error = response.ok
            ? new SharedStateError("The event stream answered something that is not an event stream.", {
              status: response.status, code: "invalid_response",
            })
            : errorFromAnswer(response.status, body);
          return;
        }
        openedAt = now();
        connected();
        const parser = createSSEParser({
          onEvent(message) {
            gotEvent = true;
            onStreamMessage(message);
          },
          onRetry(ms) {
            retryMs = Math.min(Math.max(ms, 0), retryCapMs) || DEFAULT_RETRY_MS;
          },
        });
        const decoder = new TextDecoder();
        const reader = response.body.getReader();
        // A half-open connection delivers nothing, not even the heartbeats: after
        // `streamSilenceMs` of silence the stream is given up and reconnected.
        const watch = () => timers.set(() => {
          silent = true;
          controller.abort();
        }, streamSilenceMs);
        watchdog = watch();
        for (;;) {
          const { value, done } = await reader.read();
          if (done || stopped) break;
          timers.clear(watchdog);
          watchdog = watch();
          parser.push(decoder.decode(value, { stream: true }));
        }
        parser.end();
        if (!stopped) {
          error = new SharedStateError("The event stream ended.", { code: "stream_ended" });
        }
      } catch (caught) {
        if (stopped || closed) return;
        error = silent
          ? new SharedStateError(`The event stream was silent for ${streamSilenceMs} ms.`, { code: "stream_silent" })
          : caught instanceof SharedStateError
          ? caught
          : new SharedStateError("The event stream was interrupted.", { code: "network_error", cause: caught });
        controller.abort();
      } finally {
        if (watchdog !== null) timers.clear(watchdog);
        controllers.delete(controller);
        if (!stopped && !closed) connectionEnded(openedAt, gotEvent, error, unavailable);
      }
    })();
  }

  function stopStream() {
    if (streamStop) streamStop();
    streamStop = null;
    if (reconnectTimer !== null) timers.clear(reconnectTimer);
    reconnectTimer = null;
  }

  function startPolling() {
    if (polling || closed) return;
    polling = true;
    setStatus({ connection: "polling" });
    poll();
  }

  function stopPolling() {
    polling = false;
    pollOk = false;
    if (pollTimer !== null) timers.clear(pollTimer);
    pollTimer = null;
  }

  let pollInFlight = false;
  async function poll() {
    pollTimer = null;
    if (!polling || closed || paused || pollInFlight) return;
    pollInFlight = true;
    try {
      const answer = await request("GET", API);
      if (!polling || closed) return;
      const before = confirmed;
      takeState(answer.body, answer.body?.version, { authoritative: true });
      if (sharing && confirmed !== before) post({ t: "state", state: confirmed });
      pollOk = true;
      setStatus({ connection: "polling" });
    } catch (error) {
      if (!polling || closed) return;
      pollOk = false;
      setStatus({ connection: "offline", error });
    } finally {
      pollInFlight = false;
    }
    emit();
    if (sharing && leading) postStatus();
    if (polling && !closed && !paused) pollTimer = timers.set(poll, pollIntervalMs);
  }

  // --- browser: visibility, focus, network ----------------------------------------------
  const removers = [];

  function listen(target, type, handler) {
    if (typeof target?.addEventListener !== "function") return;
    target.addEventListener(type, handler);
    removers.push(() => target.removeEventListener(type, handler));
  }

  function pageVisible() {
    return doc?.visibilityState !== "hidden";
  }

  function addBrowserListeners() {
    listen(doc, "visibilitychange", () => {
      if (sharing) postVisibility();
      updatePause();
      if (pageVisible()) revalidate();
    });
    listen(win, "focus", () => revalidate());
    listen(win, "online", () => {
      failures = 0;
      revalidate();
    });
    listen(win, "offline", () => {
      if (status.connection === "live") return; // the stream says for itself when it breaks
      setStatus({ connection: "offline" });
      emit();
    });
    listen(win, "pagehide", () => {
      if (sharing) post({ t: "bye", from: tabId });
    });
  }

  function anyTabVisible() {
    if (pageVisible()) return true;
    for (const visible of peers.values()) if (visible) return true;
    return false;
  }

  function updatePause() {
    if (!leading || closed) return;
    // A leader streams for every tab: it pauses only when no tab is visible.
    const shouldPause = !anyTabVisible();
    if (shouldPause && !paused) {
      paused = true;
      stopStream();
      stopPolling();
      setStatus({ connection: "paused" });
      emit();
      if (sharing) postStatus();
    } else if (!shouldPause && paused) {
      paused = false;
      failures = 0;
      connect();
    }
  }

  /** Back in view or online: a leader reconnects now (its stream resumes from the
   * last event id, so it catches up by events); a follower asks for the state. */
  function revalidate() {
    if (closed || !started) return;
    if (leading) {
      if (paused) return;
      if (polling) {
        if (pollTimer !== null) timers.clear(pollTimer);
        poll();
      }
      if (!streamStop) connect();
    } else {
      requestRefetch();
    }
  }

  // --- tabs: one stream per origin ------------------------------------------------------
  let channel = null;
  let lockAbort = null;
  let releaseLock = null;
  const peers = new Map(); // tabId -> visible (as each follower reported)

  function post(message) {
    if (!channel) return;
    try {
      channel.postMessage({ ...message, from: tabId });
    } catch {
      // a closed channel, or a state that cannot be cloned: the followers refetch
    }
  }

  function postStatus() {
    post({
      t: "status",
      connection: status.connection,
      error: errorToWire(status.error),
      lastEventId: status.lastEventId,
    });
  }

  function postVisibility() {
    post({ t: "visibility", visible: pageVisible() });
  }

  function joinTabs() {
    channel = new Channel(`shared-state:${baseUrl}:${scope}`);
    channel.onmessage = (message) => onChannelMessage(message.data);
    post({ t: "hello", visible: pageVisible() });
    lockAbort = new AbortController();
    locks.request(`shared-state:${baseUrl}:${scope}`, { signal: lockAbort.signal }, () => {
      if (closed) return undefined;
      return new Promise((resolve) => {
        releaseLock = resolve;
        becomeLeader();
      });
    }).catch(() => {}); // aborted by close()
    setStatus({ connection: "connecting", leader: false });
    emit();
  }

  function becomeLeader() {
    leading = true;
    failures = 0;
    setStatus({ leader: true });
    emit();
    // Followers tell the new leader whether they are visible.
    post({ t: "who" });
    updatePause();
    if (!paused) connect();
  }

  function onChannelMessage(message) {
    if (closed || !isPlainObject(message) || message.from === tabId) return;
    switch (message.t) {
      case "hello":
        peers.set(message.from, message.visible !== false);
        if (leading) {
          if (confirmed && fresh) post({ t: "state", to: message.from, state: confirmed });
          postStatus();
          updatePause();
        }
        break;
      case "who":
        if (!leading) postVisibility();
        break;
      case "visibility":
        peers.set(message.from, message.visible !== false);
        if (leading) updatePause();
        break;
      case "bye":
        peers.delete(message.from);
        if (leading) updatePause();
        break;
      case "state":
        if (!leading && (message.to === undefined || message.to === tabId) &&
          isPlainObject(message.state)) {
          if (takeState(message.state, message.state.version, { authoritative: true })) emit();
        }
        break;
      case "event":
        if (!leading) {
          applyEvent(message.event, { broadcast: true });
          emit();
        }
        break;
      case "status":
        if (!leading && typeof message.connection === "string") {
          setStatus({
            connection: message.connection,
            error: errorFromWire(message.error),
          });
          emit();
        }
        break;
      default:
        break; // unknown messages (another version of the client): ignored
    }
  }

  // --- close -------------------------------------------------------------------------
  function close() {
    if (closed) return;
    flushPersist();
    closed = true;
    stopStream();
    stopPolling();
    for (const controller of controllers) controller.abort();
    controllers.clear();
    for (const remove of removers.splice(0)) remove();
    if (channel) {
      post({ t: "bye" });
      channel.onmessage = null;
      try {
        channel.close();
      } catch {
        // already closed
      }
      channel = null;
    }
    if (lockAbort) lockAbort.abort();
    if (releaseLock) releaseLock();
    releaseLock = null;
    status = { ...status, connection: "closed", leader: false };
    dirty = true;
    const toNotify = [...listeners];
    listeners.clear();
    eventListeners.clear();
    for (const listener of toNotify) {
      try {
        listener();
      } catch {
        // closing: nothing to report to
      }
    }
  }

  // --- the public object ------------------------------------------------------------
  return {
    getSnapshot: () => shown,
    getServerSnapshot: () => serverSnapshot,
    getStatus: () => status,
    subscribe(listener) {
      if (closed) return () => {};
      listeners.add(listener);
      start();
      return () => listeners.delete(listener);
    },
    onEvent(fn) {
      if (closed) return () => {};
      eventListeners.add(fn);
      start();
      return () => eventListeners.delete(fn);
    },
    /** Starts the live connection without a subscriber (subscribe() also starts it). */
    connect: start,
    getState: () => getState(),
    getUser: () => read(`${API}/user`),
    getSettings: () => read(`${API}/settings`),
    getWorkspaces: () => read(`${API}/workspaces`),
    getConversations: () => read(`${API}/conversations`),
    getWorkspace: (idOrSlug) => read(`${API}/workspaces/${encodeURIComponent(String(idOrSlug))}`),
    getConversation: (id) => read(`${API}/conversations/${encodeURIComponent(String(id))}`),
    getServiceStatus: () => read(`${API}/status`),
    /** POST /sync; the store refreshes (by the stream's events when it is live). */
    async sync() {
      const answer = (await request("POST", `${API}/sync`, { conditional: false })).body;
      if (status.connection !== "live") await requestRefetch();
      return answer;
    },
    updateLLMSettings: (patch) => write("llm", `${API}/llm-settings`, patch),
    updateUISettings: (patch) => write("ui", `${API}/ui-settings`, patch),
    close,
  };
}
