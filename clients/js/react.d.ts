// Types of react.js, the React binding of the shared-state client. They are derived
// from the client's own types (index.d.ts), so the two cannot drift apart.
import type { createSharedStateClient, SharedStateError } from "./index.js";

/** The store `createSharedStateClient` returns. */
type Client = ReturnType<typeof createSharedStateClient>;
/** The options `createSharedStateClient` takes. */
type ClientOptions = NonNullable<Parameters<typeof createSharedStateClient>[0]>;
/** The state of contract §4, as the store holds it. */
type State = NonNullable<ReturnType<Client["getSnapshot"]>>;
/** The store's connection status. */
type Status = ReturnType<Client["getStatus"]>;
type Workspace = NonNullable<State["workspaces"]>[number];
type Conversation = NonNullable<State["conversations"]>[number];

/**
 * `createSharedStateClient`'s options (the hook makes one client per distinct
 * options and shares it among the components that use them), or `client` for a
 * store made elsewhere, plus `select`, `isEqual` and `initialState`.
 */
export interface UseSharedStateOptions<Selected = State> extends Omit<ClientOptions, "initialState"> {
  /** A store made elsewhere; the hook uses it as it is and never closes it. */
  client?: Client;
  /** The slice the component uses: it re-renders only when the slice changes. */
  select?: (state: State) => Selected;
  /** How two slices compare (default `Object.is`). */
  isEqual?: (previous: Selected, next: Selected) => boolean;
  /** Shown before the client has a state, and what a server render shows. */
  initialState?: State | null;
}

/** What `useSharedState` returns: the BizzyPerson hook's members and more. */
export interface SharedStateHookResult<Selected = State> {
  /** The state (or the selected slice); `null` while `loading`. */
  state: Selected | null;
  /** True only until the first state arrives; never again on updates. */
  loading: boolean;
  /** The service's sentence for the last error (its `detail`), or `null`. */
  error: string | null;
  /** The last error in full (`status`, `code`, `detail`, `results`), or `null`. */
  errorInfo: SharedStateError | null;
  /** The client's status (read lazily: only a component that reads it re-renders for it). */
  status: Status;
  /** The client in use; `null` in a server render and before the first commit. */
  client: Client | null;
  /** `POST /api/shared-state/sync`; resolves to its answer. */
  syncState(): ReturnType<Client["sync"]>;
  /** The client's optimistic write; rejects with SharedStateError and sets `error`. */
  updateLLMSettings: Client["updateLLMSettings"];
  /** The client's optimistic write; rejects with SharedStateError and sets `error`. */
  updateUISettings: Client["updateUISettings"];
  /** A workspace of the current state by `id` or `slug`; `undefined` when absent. */
  getWorkspace(idOrSlug: string | number): Workspace | undefined;
  /** A conversation of the current state by `id`; `undefined` when absent. */
  getConversation(id: string | number): Conversation | undefined;
}

export function useSharedState<Selected>(
  options: UseSharedStateOptions<Selected> & { select: (state: State) => Selected },
): SharedStateHookResult<Selected>;
export function useSharedState(options?: UseSharedStateOptions<State>): SharedStateHookResult<State>;
