// Types of shared-state-client. The model interfaces mirror the service's models (the
// OpenAPI schema of `shared_state.create_app`, and the event models): the test
// tests/clients/test_js_types.py checks that each interface below marked "mirrors X"
// declares exactly X's properties, optional and nullable as the schema says.
// Layout the test reads: `export interface Name {` (or `extends Other {`), one
// `name: type;` or `name?: type;` per line, `}` alone on its line.

// --- The state (contract §4) ---------------------------------------------------------

/** mirrors SharedState */
export interface State {
  version: number;
  syncTimestamp: string | null;
  user: User | null;
  settings: Settings;
  workspaces: Workspace[];
  conversations: Conversation[];
  sources: Partial<Record<SourceName, Source>>;
}

/** mirrors User */
export interface User {
  id: number | string | null;
  username: string | null;
  email: string | null;
  name: string | null;
  role: string | null;
  anythingLLM: Record<string, unknown> | null;
  libreChat: Record<string, unknown> | null;
}

/** mirrors StateSettings */
export interface Settings {
  llm: LLMSettings;
  embedding: EmbeddingSettings;
  ui: UISettings;
  vectorDb: VectorDbSettings;
}

/** mirrors LlmSettings */
export interface LLMSettings {
  provider: string | null;
  model: string | null;
  temperature: number;
  maxTokens: number;
}

/** mirrors EmbeddingSettings */
export interface EmbeddingSettings {
  provider: string;
  model: string;
}

/** mirrors UiSettings */
export interface UISettings {
  theme: string;
  fontSize: string;
}

/** mirrors VectorDbSettings */
export interface VectorDbSettings {
  provider: string;
  settings: Record<string, unknown>;
}

/** A workspace keeps AnythingLLM's own fields; `id` is always there. */
export interface Workspace {
  id: number | string;
  name?: string;
  slug?: string;
  [field: string]: unknown;
}

/** A conversation keeps LibreChat's own fields; `id` is always there. */
export interface Conversation {
  id: number | string;
  title?: string;
  [field: string]: unknown;
}

export type SourceName = "anythingllm" | "librechat";
export type SourceStatusName = "pending" | "ok" | "stale" | "disabled";
export type Section = "user" | "settings" | "workspaces" | "conversations" | "sources";

/** mirrors SourceStatus */
export interface Source {
  status: SourceStatusName;
  lastSuccessAt: string | null;
  lastAttemptAt: string | null;
  lastError: string | null;
}

// --- Answers of the service ------------------------------------------------------------

/** mirrors SourceSchedule */
export interface SourceSchedule extends Source {
  consecutiveFailures: number;
  nextAttemptAt: string | null;
}

/** mirrors StatusAnswer */
export interface ServiceStatus {
  version: number;
  syncTimestamp: string | null;
  sources: Partial<Record<SourceName, SourceSchedule>>;
  syncIntervalS: number;
  subscribers: number;
  uptimeS: number;
  propagation: PropagationStatus;
  store: StoreStatus;
  [field: string]: unknown;
}

/** mirrors StoreStatus: where the state is kept, and this replica's part (§11) */
export interface StoreStatus {
  kind: "memory" | "redis";
  status: "ok" | "unavailable";
  lastError: string | null;
  /** this replica's id; null in memory */
  replica: string | null;
  /** the replica that syncs, as last seen; null in memory */
  leaseHolder: string | null;
  /** whether this replica syncs (always, in memory) */
  holding: boolean;
  takeovers: number;
}

/** mirrors PropagationStatus: what propagation keeps in step and what it found (§10) */
export interface PropagationStatus {
  groups: Array<"llm" | "ui">;
  policy: "anythingllm" | "librechat" | "manual";
  /** what the groups propagate between the upstreams configured, e.g. "provider+model" */
  fields: string[];
  lastPropagation: LastPropagation | null;
  conflicts: PropagationConflict[];
  unwritable: UnwritableValue[];
}

/** mirrors LastPropagationAnswer */
export interface LastPropagation {
  at: string;
  field: string;
  from: SourceName;
  to: SourceName;
  value: unknown;
}

/** mirrors ConflictAnswer */
export interface PropagationConflict {
  field: string;
  values: Partial<Record<SourceName, unknown>>;
  base: unknown;
  since: string;
}

/** mirrors UnwritableAnswer */
export interface UnwritableValue {
  field: string;
  from: SourceName;
  value: unknown;
}

/** mirrors SyncAnswer */
export interface SyncResult {
  version: number;
  changed: Section[];
  sources: Partial<Record<SourceName, Source>>;
  durationMs: number;
}

/** mirrors LlmSettingsUpdate */
export interface LLMSettingsPatch {
  provider?: string;
  model?: string;
  temperature?: number;
  maxTokens?: number;
}

/** mirrors UiSettingsUpdate */
export interface UISettingsPatch {
  theme?: "light" | "dark" | "system";
  fontSize?: "small" | "medium" | "large";
}

/** mirrors ErrorAnswer */
export interface ErrorBody {
  detail: string;
  code: string;
}

export type WriteResult = "ok" | "failed" | "rolled_back" | "rollback_failed" | "skipped";

/** mirrors WriteFailedAnswer */
export interface WriteFailedBody {
  detail: string;
  code: string;
  results: Partial<Record<SourceName, WriteResult>>;
}

/** One entry of FastAPI's 422 list. */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
  [field: string]: unknown;
}

// --- Events (contract §8) -------------------------------------------------------------

/** mirrors ItemChanges */
export interface ItemChanges<T> {
  added: T[];
  updated: T[];
  removed: (number | string)[];
}

export interface Changes {
  user?: User | null;
  settings?: Settings;
  workspaces?: ItemChanges<Workspace>;
  conversations?: ItemChanges<Conversation>;
  sources?: Partial<Record<SourceName, Source>>;
}

/** mirrors ChangedEvent */
export interface ChangedEvent {
  type: "changed";
  version: number;
  previousVersion: number;
  timestamp: string;
  changes: Changes;
}

/** mirrors SnapshotEvent */
export interface SnapshotEvent {
  type: "snapshot";
  version: number;
  timestamp: string;
  state: State;
}

export type SharedStateEvent = ChangedEvent | SnapshotEvent;

// --- The client -------------------------------------------------------------------------

export type Connection = "idle" | "connecting" | "live" | "polling" | "paused" | "offline" | "closed";

export interface ClientStatus {
  connection: Connection;
  /** true while the shown state may be old (persisted, disconnected, paused). */
  stale: boolean;
  /** the last error reaching the service; cleared when the stream is live. */
  error: SharedStateError | null;
  lastEventId: number | null;
  /** this tab holds the shared stream (true when not sharing). */
  leader: boolean;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface LocksLike {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<unknown> | unknown): Promise<unknown>;
}

export interface SharedStateClientOptions {
  /** "" (same origin, the default) or "http://127.0.0.1:8080". */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer`; a function is called for each request. */
  token?: string | (() => string | null | undefined | Promise<string | null | undefined>);
  fetch?: typeof fetch;
  /** null forces fetch streaming. */
  EventSource?: (new (url: string) => EventSource) | null;
  sections?: Section[];
  /** false: no stream, no polling (reads and writes only). Default true. */
  live?: boolean;
  /** Polling period when the stream is unavailable. Default 5000. */
  pollIntervalMs?: number;
  /** Keep the last state in storage and show it at once, stale until live. */
  persist?: boolean;
  storage?: StorageLike;
  /** One stream per origin among tabs (BroadcastChannel + Web Locks). Default true. */
  shareTabs?: boolean;
  BroadcastChannel?: new (name: string) => BroadcastChannel;
  locks?: LocksLike;
  /** getSnapshot() starts with it, getServerSnapshot() returns it (SSR, hydration). */
  initialState?: State;
  /** The back-off's ceiling. Default 30000. */
  retryCapMs?: number;
  /** A connection open this long (or that delivered an event) resets the back-off. Default 5000. */
  healthyAfterMs?: number;
  /** Injectable for tests: timers, clock, jitter source, page and window. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  now?: () => number;
  random?: () => number;
  document?: { visibilityState?: string; addEventListener(type: string, fn: () => void): void; removeEventListener(type: string, fn: () => void): void } | null;
  window?: { addEventListener(type: string, fn: () => void): void; removeEventListener(type: string, fn: () => void): void } | null;
}

export interface SharedStateClient {
  getSnapshot(): State | null;
  getServerSnapshot(): State | null;
  subscribe(listener: () => void): () => void;
  getStatus(): ClientStatus;
  onEvent(fn: (event: SharedStateEvent) => void): () => void;
  /** Starts the live connection without a subscriber (subscribe() starts it too). */
  connect(): void;
  getState(): Promise<State>;
  getUser(): Promise<User | null>;
  getSettings(): Promise<Settings>;
  getWorkspaces(): Promise<Workspace[]>;
  getConversations(): Promise<Conversation[]>;
  getWorkspace(idOrSlug: number | string): Promise<Workspace>;
  getConversation(id: number | string): Promise<Conversation>;
  getServiceStatus(): Promise<ServiceStatus>;
  sync(): Promise<SyncResult>;
  updateLLMSettings(patch: LLMSettingsPatch): Promise<LLMSettings>;
  updateUISettings(patch: UISettingsPatch): Promise<UISettings>;
  close(): void;
}

export declare function createSharedStateClient(options?: SharedStateClientOptions): SharedStateClient;

export declare class SharedStateError extends Error {
  constructor(message: string, init?: { status?: number; code?: string; detail?: unknown; results?: Record<string, WriteResult>; cause?: unknown });
  /** HTTP status; 0 when the service could not be reached. */
  status: number;
  /** The service's code ("not_found", "version_mismatch", "upstream_write_failed", ...), or
   * "network_error", "invalid_response", "closed", "validation_error", "http_<status>". */
  code: string;
  /** The service's detail: a sentence, or FastAPI's 422 list. */
  detail: string | ValidationIssue[];
  /** The per-upstream results of a failed write. */
  results: Partial<Record<SourceName, WriteResult>> | undefined;
}

export interface SSEMessage {
  type: string;
  data: string;
  id: string;
}

export declare function createSSEParser(handlers: {
  onEvent: (message: SSEMessage) => void;
  onRetry?: (ms: number) => void;
  onComment?: (text: string) => void;
  maxBytes?: number;
}): { push(chunk: string): void; end(): void };

export declare function replaceEqualDeep<T>(prev: unknown, next: T): T;
