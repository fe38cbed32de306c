/**
 * The React binding of the shared-state client: `useSharedState(options)`.
 *
 * The store (`./client.js`) knows nothing of React; this module only binds it
 * with `useSyncExternalStore`, keeps the BizzyPerson hook's return shape so
 * components written for it keep working, and shares one client (one event
 * stream) among every component that asks for the same service. `react` stays
 * a bare import (the page's bundler or import map resolves it); the client is
 * imported by a relative URL, which resolves both in the npm package and
 * where the service serves `/api/shared-state/react.js`.
 */
import {
  useEffect,
  useLayoutEffect,
  useMemo,
  useReducer,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import { createSharedStateClient } from "./client.js";

/** What `status` is before a component has a client (server render, first render). */
const IDLE_STATUS = Object.freeze({
  connection: "idle",
  stale: false,
  error: null,
  lastEventId: null,
  leader: false,
});

const noSubscription = () => () => {};

/**
 * Clients made by the hook, by the options that make them differ.
 *
 * One client per distinct options, shared by every component using them,
 * counted, and closed when the last of them unmounts: the BizzyPerson hook
 * made one poller per component.
 * @type {Map<string, {key: string, client: any, refs: number, token: any}>}
 */
const sharedClients = new Map();

/** Numbers for option values compared by identity (fetch, EventSource, storage). */
const identities = new WeakMap();
let lastIdentity = 0;

function identityOf(value) {
  let id = identities.get(value);
  if (id === undefined) {
    lastIdentity += 1;
    id = lastIdentity;
    identities.set(value, id);
  }
  return `#${id}`;
}

/**
 * The cache key of a set of client options.
 *
 * Plain values count by value (`baseUrl`, a string `token`, `sections` in any
 * order, `live`, `pollIntervalMs`, ...); objects and functions (`fetch`,
 * `EventSource`, `storage`) by identity. A `token` function is not part of
 * the key, because one written inline is a new function at every render: the
 * shared client calls the latest one given.
 */
function clientKey(options) {
  const parts = Object.keys(options)
    .filter((name) => options[name] !== undefined)
    .sort()
    .map((name) => {
      const value = options[name];
      if (name === "baseUrl" && typeof value === "string") return [name, value.replace(/\/+$/, "")];
      if (name === "token" && typeof value === "function") return [name, "(function)"];
      if (name === "sections" && Array.isArray(value)) return [name, value.map(String).sort()];
      if (value === null || (typeof value !== "object" && typeof value !== "function")) {
        return [name, value];
      }
      return [name, identityOf(value)];
    });
  return JSON.stringify(parts);
}

/** Takes a reference to the shared client for `key`, creating it if needed. */
function acquireClient(key, options, initialState) {
  let entry = sharedClients.get(key);
  if (entry === undefined) {
    const created = { key, client: null, refs: 0, token: options.token };
    const clientOptions = { ...options };
    if (initialState !== undefined) clientOptions.initialState = initialState;
    if (typeof options.token === "function") clientOptions.token = () => created.token();
    created.client = createSharedStateClient(clientOptions);
    sharedClients.set(key, created);
    entry = created;
  }
  if (typeof options.token === "function") entry.token = options.token;
  entry.refs += 1;
  return entry;
}

/**
 * Gives a reference back; the last one closes the client.
 *
 * The close waits for a microtask so that a component that lets go and takes
 * the same client again within one commit (StrictMode's double effects, a
 * parent that remounts its children) keeps the stream it has.
 */
function releaseClient(entry) {
  entry.refs -= 1;
  if (entry.refs > 0) return;
  queueMicrotask(() => {
    if (entry.refs > 0 || sharedClients.get(entry.key) !== entry) return;
    sharedClients.delete(entry.key);
    entry.client.close();
  });
}

/**
 * `useLayoutEffect` in a browser (the client is taken before the first paint,
 * so a state it already holds shows without a "Loading..." frame),
 * `useEffect` on a server, where React warns about layout effects.
 */
function useClientEffect(effect, deps) {
  const useAnyEffect = typeof document === "undefined" ? useEffect : useLayoutEffect;
  useAnyEffect(effect, deps);
}

/** The service's sentence for an error: its `detail` when that is a string. */
function errorSentence(error) {
  if (error === null || error === undefined) return null;
  if (typeof error.detail === "string" && error.detail !== "") return error.detail;
  if (typeof error.message === "string" && error.message !== "") return error.message;
  return String(error);
}

/** An item of a list by `id` (also when a number id is asked for as a string), else by `slug`. */
function findItem(items, wanted, matchSlug) {
  if (!Array.isArray(items) || wanted === null || wanted === undefined) return undefined;
  const text = String(wanted);
  const byId = items.find(
    (item) => item !== null && typeof item === "object" && (item.id === wanted || String(item.id) === text),
  );
  if (byId !== undefined || !matchSlug) return byId;
  return items.find((item) => item !== null && typeof item === "object" && item.slug === text);
}

/**
 * The members that call the client: stable for the component's whole life.
 *
 * They read the client and the state at call time through `latest`, so a
 * handler memoised with them never holds an old client or an old state.
 */
function createActions(latest) {
  const currentState = () => {
    const { client, fallback } = latest.current;
    return (client === null ? null : client.getSnapshot()) ?? fallback;
  };
  const run = (call) => {
    const { client, setActionError } = latest.current;
    if (client === null) {
      return Promise.reject(
        new Error("useSharedState has no client until the component mounts: call it from an event handler or an effect."),
      );
    }
    return Promise.resolve()
      .then(() => call(client))
      .then(
        (result) => {
          setActionError(null);
          return result;
        },
        (error) => {
          setActionError(error);
          throw error;
        },
      );
  };
  return {
    syncState: () => run((client) => client.sync()),
    updateLLMSettings: (patch) => run((client) => client.updateLLMSettings(patch)),
    updateUISettings: (patch) => run((client) => client.updateUISettings(patch)),
    getWorkspace: (idOrSlug) => findItem(currentState()?.workspaces, idOrSlug, true),
    getConversation: (id) => findItem(currentState()?.conversations, id, false),
  };
}

/**
 * The shared state of the service, live, for a React component.
 *
 * `options` are `createSharedStateClient`'s (`baseUrl`, `token`, `sections`,
 * ...), or `{client}` for a store made elsewhere (then the hook never closes
 * it), plus:
 * - `select(state)`: the slice the component uses; it re-renders only when
 *   the slice changes (compared with `isEqual`, default `Object.is`). An
 *   inline selector is fine.
 * - `initialState`: the state to show before the client has one, and the one
 *   a server render shows (`getServerSnapshot`), e.g. from a server-side GET.
 *
 * Returns the BizzyPerson hook's members (`state`, `loading`, `error`,
 * `syncState`, `updateLLMSettings`, `updateUISettings`, `getWorkspace`,
 * `getConversation`) and `errorInfo`, `status`, `client`. `status` and
 * `error` are read lazily: a component re-renders for a change of the
 * connection only when it reads them.
 */
export function useSharedState(options = {}) {
  const {
    client: givenClient,
    select,
    isEqual = Object.is,
    initialState,
    ...clientOptions
  } = options ?? {};
  const fallback = initialState ?? null;
  const key = givenClient ? null : clientKey(clientOptions);
  // Rendering only looks the shared client up: it is taken (and made, the
  // first time) in an effect, so a server render or a render React throws
  // away creates nothing.
  const entry = key === null ? undefined : sharedClients.get(key);
  const client = givenClient ?? entry?.client ?? null;

  const [, rerender] = useReducer((count) => count + 1, 0);
  const [actionError, setActionError] = useState(null);
  const latest = useRef(null);
  if (latest.current === null) latest.current = { client, fallback, setActionError };
  const [actions] = useState(() => createActions(latest));
  // Which lazily read members the component used: only those re-render it.
  const [reads] = useState(() => ({ status: false, error: false }));
  const committedView = useRef(null);

  useClientEffect(() => {
    latest.current = { client, fallback, setActionError };
  });
  useClientEffect(() => {
    if (key === null) return undefined;
    const taken = acquireClient(key, clientOptions, initialState);
    latest.current = { ...latest.current, client: taken.client };
    if (taken !== entry) rerender();
    return () => releaseClient(taken);
    // The options are in `key`; a new key is a new client.
  }, [key]);

  const subscribe = useMemo(
    () => (client === null ? noSubscription : (listener) => client.subscribe(listener)),
    [client],
  );

  // useSyncExternalStoreWithSelector's memo, with React's own hook: one view
  // per (snapshot, status) pair, and the previous view kept while nothing the
  // component reads has changed, so a store change outside the slice does
  // not re-render it, and an inline selector neither loops nor re-renders.
  const [getView, getServerView] = useMemo(() => {
    let last = null;
    let lastSnapshot;
    let lastStatus;
    const viewOf = (snapshot, status) => {
      if (last !== null && snapshot === lastSnapshot && status === lastStatus) return last;
      const previous = last ?? committedView.current;
      const hasState = snapshot !== null && snapshot !== undefined;
      let state = null;
      if (hasState) {
        state = last !== null && snapshot === lastSnapshot ? last.state : select ? select(snapshot) : snapshot;
      }
      if (previous !== null && previous.hasState && hasState && isEqual(previous.state, state)) {
        state = previous.state;
      }
      const statusError = status.error ?? null;
      const unchanged =
        previous !== null &&
        state === previous.state &&
        hasState === previous.hasState &&
        (!reads.status || status === previous.status) &&
        (!reads.error || statusError === previous.statusError);
      last = unchanged ? previous : { state, hasState, status, statusError };
      lastSnapshot = snapshot;
      lastStatus = status;
      return last;
    };
    const liveView = () =>
      client === null
        ? viewOf(fallback, IDLE_STATUS)
        : viewOf(client.getSnapshot() ?? fallback, client.getStatus());
    const serverView = () => {
      const serverSnapshot = givenClient?.getServerSnapshot?.() ?? null;
      return viewOf(serverSnapshot ?? fallback, IDLE_STATUS);
    };
    return [liveView, serverView];
  }, [client, givenClient, select, isEqual, fallback, reads]);

  const view = useSyncExternalStore(subscribe, getView, getServerView);
  useClientEffect(() => {
    committedView.current = view;
  });

  const currentStatus = () => (client === null ? IDLE_STATUS : client.getStatus());
  return {
    state: view.state,
    loading: !view.hasState,
    get error() {
      reads.error = true;
      return errorSentence(actionError ?? currentStatus().error ?? null);
    },
    get errorInfo() {
      reads.error = true;
      return actionError ?? currentStatus().error ?? null;
    },
    get status() {
      reads.status = true;
      return currentStatus();
    },
    client,
    syncState: actions.syncState,
    updateLLMSettings: actions.updateLLMSettings,
    updateUISettings: actions.updateUISettings,
    getWorkspace: actions.getWorkspace,
    getConversation: actions.getConversation,
  };
}
