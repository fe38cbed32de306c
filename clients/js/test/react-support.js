// The React hook's test harness: a jsdom window installed as the globals react-dom
// expects (imported first, before react-dom reads them), a render helper under
// React's act(), and a hand-written store with the client's interface for tests
// that drive the store directly. Node's test runner also loads this file as a
// test file of its own; it defines no tests.
import { afterEach } from "node:test";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>", {
  url: "http://127.0.0.1:8080/",
  pretendToBeVisual: true, // document.visibilityState "visible": the client does not pause
});
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.navigator = dom.window.navigator; // Node 20 has none; react-dom reads userAgent
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const { act, createElement } = await import("react");
const { createRoot, hydrateRoot } = await import("react-dom/client");

export { act, createElement as h };

// React reports misuse (an update outside act(), a hydration mismatch, a
// getSnapshot that is not cached) on console.error: any of it fails the test.
const reported = [];
const consoleError = console.error;
console.error = (...args) => {
  reported.push(args.map(String).join(" "));
};
afterEach(() => {
  const messages = reported.splice(0);
  if (messages.length > 0) {
    consoleError(...messages);
    throw new Error(`console.error was called: ${messages[0]}`);
  }
});

/**
 * Renders `element` the way a page does, without act(): React schedules its own
 * work, and the test waits for what it expects to see (set
 * `IS_REACT_ACT_ENVIRONMENT = false` first). Every text the container showed is
 * in `texts`.
 */
export function mount(element) {
  const container = document.createElement("div");
  document.body.append(container);
  const texts = [];
  const observer = new window.MutationObserver(() => texts.push(container.textContent));
  observer.observe(container, { childList: true, subtree: true, characterData: true, attributes: true });
  const root = createRoot(container);
  root.render(element);
  return {
    container,
    texts,
    text: () => container.textContent,
    unmount: () => {
      root.unmount();
      observer.disconnect();
      container.remove();
    },
  };
}

/** Runs `fn` inside React's act() and waits for what it started to render. */
export function step(fn) {
  return act(async () => {
    await fn();
  });
}

/** Renders `element` into a fresh container; `unmount()` ends it. */
export async function render(element) {
  const container = document.createElement("div");
  document.body.append(container);
  const root = createRoot(container);
  await act(async () => root.render(element));
  return {
    container,
    text: () => container.textContent,
    rerender: (next) => act(async () => root.render(next)),
    unmount: async () => {
      await act(async () => root.unmount());
      container.remove();
    },
  };
}

/**
 * renderToString as a server runs it: without the window and document this
 * process has for react-dom (the hook picks its effect by them).
 */
export async function renderOnServer(element) {
  const { renderToString } = await import("react-dom/server");
  const saved = { window: globalThis.window, document: globalThis.document };
  delete globalThis.window;
  delete globalThis.document;
  try {
    return renderToString(element);
  } finally {
    Object.assign(globalThis, saved);
  }
}

/** Puts server-rendered `html` in a fresh container and hydrates it with `element`. */
export async function hydrate(element, html) {
  const container = document.createElement("div");
  container.innerHTML = html;
  document.body.append(container);
  let root;
  await act(async () => {
    root = hydrateRoot(container, element);
  });
  return {
    container,
    text: () => container.textContent,
    unmount: async () => {
      await act(async () => root.unmount());
      container.remove();
    },
  };
}

/** A SharedStateError-shaped error, as the client rejects with. */
export function serviceError(status, code, detail, results) {
  const error = new Error(typeof detail === "string" ? detail : "The request was not valid.");
  error.name = "SharedStateError";
  Object.assign(error, { status, code, detail, results });
  return error;
}

/**
 * A store with the client's interface and no I/O, driven by the test.
 *
 * `set(state)` and `setStatus(patch)` change it and notify like the client
 * (new objects, same ones while unchanged); writes resolve or reject with what
 * `nextWrite` holds; `calls` records what the hook asked for.
 */
export function createFakeStore({ state = null, serverState = null } = {}) {
  let snapshot = state;
  let status = Object.freeze({ connection: "live", stale: false, error: null, lastEventId: state?.version ?? null, leader: true });
  const listeners = new Set();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  const store = {
    calls: [],
    closed: false,
    nextWrite: null,
    listenerCount: () => listeners.size,
    set(next) {
      snapshot = next;
      status = Object.freeze({ ...status, lastEventId: next?.version ?? null });
      notify();
    },
    setStatus(patch) {
      status = Object.freeze({ ...status, ...patch });
      notify();
    },
    getSnapshot: () => snapshot,
    getServerSnapshot: () => serverState,
    getStatus: () => status,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async sync() {
      store.calls.push(["sync"]);
      return { version: snapshot?.version ?? 0, changed: [], sources: {}, durationMs: 1 };
    },
    async updateLLMSettings(patch) {
      return store.write("llm", patch);
    },
    async updateUISettings(patch) {
      return store.write("ui", patch);
    },
    async write(section, patch) {
      store.calls.push([section, patch]);
      const outcome = store.nextWrite;
      store.nextWrite = null;
      if (outcome instanceof Error) throw outcome;
      return { ...snapshot.settings[section], ...patch };
    },
    close() {
      store.closed = true;
    },
  };
  return store;
}

/** The §4 state the tests start from. */
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
    workspaces: [
      { id: 1, name: "Research", slug: "research" },
      { id: 2, name: "Ops", slug: "ops" },
    ],
    conversations: [
      { id: "c-1", title: "Quarterly plan" },
      { id: "c-2", title: "Hiring" },
    ],
    sources: {
      anythingllm: { status: "ok", lastSuccessAt: null, lastAttemptAt: null, lastError: null },
      librechat: { status: "ok", lastSuccessAt: null, lastAttemptAt: null, lastError: null },
    },
    ...overrides,
  };
}
