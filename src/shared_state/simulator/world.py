"""The simulated upstreams' mutable data: plain dataclasses, seeded from hand-written data.

Nothing here knows about HTTP: the route modules decide how each API flavour renders it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self, get_args

JSONObject = dict[str, Any]

SECRET_CANARY = "CANARY-7f3a9c"  # noqa: S105 - a marker to grep for, not a credential
"""Appears inside every secret value of the simulated data, so leaks can be grepped for."""

SIM_ANYTHINGLLM_API_KEY = "sim-anythingllm-key"
"""The API key the simulated AnythingLLM expects by default."""

SIM_LIBRECHAT_TOKEN = "sim-librechat-token"  # noqa: S105 - a fixed key of the simulator
"""The bearer token the simulated LibreChat expects by default (bizzy flavour)."""

SIM_ANYTHINGLLM_USERNAME = "ada"
"""The user name the native AnythingLLM's multi-user login accepts."""

SIM_ANYTHINGLLM_PASSWORD = "sim-anythingllm-password"  # noqa: S105 - a fixed login of the simulator
"""The password the native AnythingLLM's multi-user login accepts."""

SIM_LIBRECHAT_EMAIL = "ada@example.com"
"""The e-mail address the native LibreChat's login accepts."""

SIM_LIBRECHAT_PASSWORD = "sim-librechat-password"  # noqa: S105 - a fixed login of the simulator
"""The password the native LibreChat's login accepts."""

Flavour = Literal["bizzy", "native"]
FLAVOURS: tuple[Flavour, ...] = get_args(Flavour)

ReadFault = Literal[
    "ok", "error", "html", "malformed", "wrong_shape", "slow", "throttled", "unavailable"
]
"""`throttled` answers 429 and `unavailable` 503, each with `Faults.retry_after` (when
set) as the `Retry-After` header."""
WriteFault = Literal["ok", "fail"]
READ_FAULTS: tuple[ReadFault, ...] = get_args(ReadFault)
WRITE_FAULTS: tuple[WriteFault, ...] = get_args(WriteFault)
DEFAULT_SLOW_DELAY_S = 30.0


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def js_iso(moment: datetime) -> str:
    """Format a time the way JavaScript's `Date.toISOString()` does: UTC, milliseconds, `Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_millis(moment: datetime) -> datetime:
    """Drop the microseconds below a millisecond, as MongoDB and JavaScript dates do."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def object_id(kind: int, number: int) -> str:
    """A deterministic 24-hex-digit MongoDB-style id: `kind` tells collections apart."""
    return f"66{kind:02x}{number:020x}"


ONE_MS = timedelta(milliseconds=1)


@dataclass
class Stats:
    """Counters of what an upstream was asked: for tests asserting how a client behaves.

    `logins` and `refreshes` count requests (whatever their outcome); the other counters
    count the outcome they name. `paths` counts every request outside `/_sim`, by path.
    """

    logins: int = 0
    login_rejections_429: int = 0
    refreshes: int = 0
    refresh_failures: int = 0
    convo_page_requests: int = 0
    forbidden_calls: int = 0
    vector_resets: int = 0
    paths: dict[str, int] = field(default_factory=dict)

    def count_path(self, path: str) -> None:
        """Count one request to `path`."""
        self.paths[path] = self.paths.get(path, 0) + 1

    def as_json(self) -> JSONObject:
        """The counters as a JSON object."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"paths": dict(self.paths)}


@dataclass
class Faults:
    """How the simulated upstream misbehaves: on reads, on writes, and how slowly."""

    reads: ReadFault = "ok"
    writes: WriteFault = "ok"
    delay_s: float = DEFAULT_SLOW_DELAY_S
    retry_after: str | None = None
    """The `Retry-After` of a `throttled` or `unavailable` read (seconds or an HTTP date)."""
    fail_next_writes: int = 0
    """This many writes from now on fail (500), then writes land again."""


@dataclass(frozen=True)
class WriteRecord:
    """One write request the upstream received, and whether it was applied."""

    path: str
    body: Any
    accepted: bool


@dataclass
class Workspace:
    """An AnythingLLM workspace; `documents` counts the documents embedded in it.

    `options` holds the other columns of the real `workspaces` table under their own names
    (`openAiHistory`, `topN`, `chatMode`, ...); columns left out have their default.
    """

    id: int
    name: str
    slug: str
    created_at: datetime
    openai_temp: float | None = None
    chat_provider: str | None = None
    chat_model: str | None = None
    documents: int = 0
    options: JSONObject = field(default_factory=dict)
    threads: list[JSONObject] = field(default_factory=list)


@dataclass
class Conversation:
    """A LibreChat conversation (its messages are only counted).

    `fields` holds the other document fields under LibreChat's names: the conversation's
    preset (`temperature`, `max_tokens`, ...) and optional ones such as `pinned`.
    """

    conversation_id: str
    title: str
    endpoint: str
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    mongo_id: str = ""
    is_archived: bool = False
    fields: JSONObject = field(default_factory=dict)


@dataclass(kw_only=True)
class UpstreamWorld:
    """What both simulated upstreams have: a user, settings, faults and a log of writes.

    `user` and `settings` are open JSON objects under the upstream's own key names, so the
    control API can merge any key into them (a demo user may add odd fields on purpose).
    """

    user: JSONObject
    settings: JSONObject
    faults: Faults = field(default_factory=Faults)
    writes: list[WriteRecord] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)

    @classmethod
    def seed(cls) -> Self:
        """Build this upstream's world from the seed data."""
        raise NotImplementedError

    def reset(self) -> None:
        """Restore the seed data in place; clear faults, write log, stats and sessions."""
        fresh = self.seed()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    def merge_user(self, changes: JSONObject) -> JSONObject:
        """Merge `changes` into the user (shallowly) and return the user."""
        self.user.update(changes)
        return self.user

    def merge_settings(self, changes: JSONObject) -> JSONObject:
        """Merge `changes` into the settings (shallowly) and return the settings."""
        self.settings.update(changes)
        return self.settings

    def record_write(self, path: str, body: Any, *, accepted: bool) -> None:
        """Append one received write to the log."""
        self.writes.append(WriteRecord(path=path, body=body, accepted=accepted))


def slugify(name: str) -> str:
    """Turn a display name into a URL slug: lower case, ASCII letters and digits, dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "workspace"


_ALLM_USER_CREATED = "2026-08-01T12:00:00.000Z"
_SEED_EPOCH = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)

# (name, openAiTemp, chatProvider, chatModel, documents, days after the user was created)
_SEED_WORKSPACES: tuple[tuple[str, float | None, str | None, str | None, int, float], ...] = (
    ("General", 0.7, None, None, 12, 0.01),
    ("Engineering Docs", 0.2, "openai", "gpt-4o", 48, 1.3),
    ("Customer Support", None, "anthropic", "claude-3-5-sonnet-latest", 31, 4.8),
    ("Research Notes", 0.9, None, None, 7, 9.2),
    ("Onboarding", None, None, None, 3, 16.5),
)


# Extra columns of some seed workspaces (native flavour), by workspace number.
_SEED_WORKSPACE_OPTIONS: dict[int, JSONObject] = {
    1: {"openAiPrompt": "Answer using the workspace documents when they help."},
    2: {"openAiHistory": 30, "topN": 6, "chatMode": "query", "similarityThreshold": 0.5},
    3: {"chatMode": "automatic", "queryRefusalResponse": "Sorry, I can only help with support."},
    # A canary: a pasted bearer token, under a name that says nothing of secrets.
    4: {"openAiPrompt": f"Bearer {SECRET_CANARY}-workspace-token"},
}
_SEED_THREADS: dict[int, list[JSONObject]] = {
    1: [{"user_id": 1, "slug": "3f2c9a10-6d1e-4b7a-9c55-0e8f1a2b3c4d", "name": "Thread"}],
    2: [
        {"user_id": 1, "slug": "7a1d2e3f-4b5c-4d6e-8f90-a1b2c3d4e5f6", "name": "API review"},
        {"user_id": None, "slug": "9b8c7d6e-5f4a-4b3c-9d2e-1f0a9b8c7d6e", "name": "Release notes"},
    ],
}

_SEED_ENV: dict[str, str] = {
    "LLMProvider": "openai",
    "OpenAiKey": f"sk-{SECRET_CANARY}-openai",
    "OpenAiModelPref": "gpt-4o",
    "OllamaLLMBasePath": "http://ollama:11434",
    "OllamaLLMModelPref": "llama3.1:8b",
    "OllamaLLMTokenLimit": "8192",
    "EmbeddingEngine": "openai",
    "EmbeddingModelPref": "text-embedding-3-small",
    "VectorDB": "lancedb",
    "StorageDir": "/app/server/storage",
    "AuthToken": f"{SECRET_CANARY}-auth",
    "JWTSecret": f"{SECRET_CANARY}-jwt",
}

THIRTY_DAYS_S = 30 * 24 * 3600.0


@dataclass
class AnythingLLMAuth:
    """The native AnythingLLM's internal-API login: mode, credentials and JWT lifetime."""

    multi_user: bool = True
    username: str = SIM_ANYTHINGLLM_USERNAME
    password: str = SIM_ANYTHINGLLM_PASSWORD
    jwt_ttl_s: float = THIRTY_DAYS_S
    jwt_secret: str = f"{SECRET_CANARY}-allm-jwt-secret"
    token_clock_offset_s: float = 0.0
    """Added to the `iat`/`exp` of the JWTs issued: a server whose clock is off."""


@dataclass(kw_only=True)
class AnythingLLMWorld(UpstreamWorld):
    """The simulated AnythingLLM: its admin user, system settings and workspaces.

    `settings` is what the bizzy flavour serves; `env` holds the native flavour's settings
    as AnythingLLM keeps them, env-like strings under their `update-env` names.
    `unsupported_providers` are LLM providers `update-env` refuses here (a test's choice).
    """

    workspaces: list[Workspace] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    auth: AnythingLLMAuth = field(default_factory=AnythingLLMAuth)
    unsupported_providers: list[str] = field(default_factory=list)

    @classmethod
    def seed(cls) -> Self:
        """Build the seed AnythingLLM data: one admin user and five workspaces."""
        user: JSONObject = {
            "id": 1,
            "username": "ada",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "role": "admin",
            "password": f"{SECRET_CANARY}-pw",
            "createdAt": _ALLM_USER_CREATED,
            # Canaries: secrets under names and shapes a deny-list would miss.
            "recoveryCodes": [f"{SECRET_CANARY}-recovery"],
            "web_push_subscription_config": {"keys": {"p256dh": f"{SECRET_CANARY}-push"}},
        }
        settings: JSONObject = {
            "LLMProvider": "openai",
            "OpenAiModelPref": "gpt-4o",
            "Temperature": 0.7,
            "MaxTokens": 4096,
            "EmbeddingEngine": "openai",
            "EmbeddingModel": "text-embedding-3-small",
            "VectorDB": "lancedb",
            "VectorDBSettings": {"path": "/storage/lancedb", "apiKey": f"{SECRET_CANARY}-vdb"},
            "OpenAiKey": f"sk-{SECRET_CANARY}-openai",
            "AuthToken": f"{SECRET_CANARY}-auth",
            "MultiUserMode": False,
        }
        workspaces = [
            Workspace(
                id=number,
                name=name,
                slug=slugify(name),
                created_at=_SEED_EPOCH + timedelta(days=days),
                openai_temp=temp,
                chat_provider=provider,
                chat_model=model,
                documents=documents,
                options=dict(_SEED_WORKSPACE_OPTIONS.get(number, {})),
                threads=[dict(thread) for thread in _SEED_THREADS.get(number, [])],
            )
            for number, (name, temp, provider, model, documents, days) in enumerate(
                _SEED_WORKSPACES, start=1
            )
        ]
        return cls(user=user, settings=settings, workspaces=workspaces, env=dict(_SEED_ENV))

    def find_workspace(self, slug: str) -> Workspace | None:
        """Return the workspace with this slug, or None."""
        return next((ws for ws in self.workspaces if ws.slug == slug), None)

    def add_workspace(
        self,
        name: str,
        *,
        openai_temp: float | None = None,
        chat_provider: str | None = None,
        chat_model: str | None = None,
        documents: int = 0,
        now: datetime | None = None,
    ) -> Workspace:
        """Create a workspace with the next id and a unique slug derived from its name."""
        base = slugify(name)
        slug, n = base, 1
        while self.find_workspace(slug) is not None:
            n += 1
            slug = f"{base}-{n}"
        workspace = Workspace(
            id=max((ws.id for ws in self.workspaces), default=0) + 1,
            name=name,
            slug=slug,
            created_at=now or utcnow(),
            openai_temp=openai_temp,
            chat_provider=chat_provider,
            chat_model=chat_model,
            documents=documents,
        )
        self.workspaces.append(workspace)
        return workspace

    def remove_workspace(self, slug: str) -> bool:
        """Delete the workspace with this slug; return whether there was one."""
        workspace = self.find_workspace(slug)
        if workspace is None:
            return False
        self.workspaces.remove(workspace)
        return True


# Oldest first: conversation c-0001 is the first one Ada ever had.
_SEED_CONVERSATION_TITLES: tuple[str, ...] = (
    "Explain the difference between TCP and UDP",
    "Draft a polite reminder about an overdue invoice",
    "Regex to validate UK postcodes",
    "Sourdough starter smells like acetone",
    "Summarise the Q2 board meeting notes",
    "Python asyncio vs threads for I/O-bound work",
    "Gift ideas for a 10-year-old who loves space",
    "Fix: Docker container can't resolve DNS",
    "Translate a menu from Italian to English",
    "SQL query for monthly active users",
    "Write a haiku about Monday mornings",
    "How does RAFT consensus handle leader failure?",
    "Plan a 3-day trip to Lisbon",
    "Cover letter for a data engineer role",
    "Why is my React component re-rendering twice?",
    "Compare Postgres and SQLite for a small SaaS",
    "Meal prep ideas with chickpeas",
    "Kubernetes liveness vs readiness probes",
    "Explain Bayes' theorem with an example",
    "Rewrite this paragraph in plain English",
    "Terraform state locking with S3 and DynamoDB",
    "Birthday speech for my grandmother",
    "Big-O of Python's dict operations",
    "Negotiate a salary offer: talking points",
    "Git: undo a pushed commit safely",
    "Photosynthesis explained for a 7th grader",
    "Design a rate limiter for a public API",
    "Recommend sci-fi novels like The Expanse",
    "Convert this CSV to JSON with jq",
    "Home office ergonomics checklist",
    "Why does my sourdough collapse in the oven?",
    "OAuth 2.0 PKCE flow step by step",
    "Weekly running plan for a first 10k",
    "Review my FastAPI dependency injection setup",
    "Mortgage overpayment vs investing",
    "Explain vector embeddings to a product manager",
    "Name ideas for a houseplant shop",
    "Debug a memory leak in a Node.js service",
    "Outline a talk on state synchronisation",
    "Compare AnythingLLM and LibreChat settings",
)


_ARCHIVED_SEED_CONVERSATIONS = frozenset({5, 12, 21})
_PINNED_SEED_CONVERSATIONS = frozenset({33, 39})


# Canaries: credential-looking values under ordinary names (native listing fields).
_CANARY_SEED_CONVERSATION_FIELDS: dict[int, JSONObject] = {
    7: {"iconURL": f"https://ada:{SECRET_CANARY}@icons.example/7.png"},
    9: {"spec": f"eyJhbGciOiJIUzI1NiJ9.eyJ{SECRET_CANARY}.c2lnbmF0dXJl"},
}


def _seed_conversation_fields(number: int) -> JSONObject:
    """The preset fields of seed conversation `number`: four patterns, in turn."""
    pattern: JSONObject = (
        {},
        {"temperature": 0.7},
        {"temperature": 0.2, "max_tokens": 2048},
        {"temperature": 1, "top_p": 0.9, "maxContextTokens": 128000},
    )[number % 4]
    pattern = {**pattern, **_CANARY_SEED_CONVERSATION_FIELDS.get(number, {})}
    if number in _PINNED_SEED_CONVERSATIONS:
        return {**pattern, "pinned": True}
    return dict(pattern)


def _seed_conversations() -> list[Conversation]:
    """Forty conversations about a day and a half apart, newest first; three are archived."""
    conversations = []
    for number, title in enumerate(_SEED_CONVERSATION_TITLES, start=1):
        created = _SEED_EPOCH + timedelta(
            hours=31 * number + (7 * number) % 11,
            minutes=(37 * number) % 60,
            seconds=(13 * number) % 60,
            milliseconds=(211 * number) % 1000,
        )
        conversations.append(
            Conversation(
                conversation_id=f"c-{number:04d}",
                title=title,
                endpoint="openAI",
                model="gpt-4o",
                created_at=created,
                updated_at=created + timedelta(minutes=3 + (53 * number) % 600),
                message_count=2 * (1 + (5 * number) % 14),
                mongo_id=object_id(1, number),
                is_archived=number in _ARCHIVED_SEED_CONVERSATIONS,
                fields=_seed_conversation_fields(number),
            )
        )
    conversations.reverse()
    return conversations


_LC_USER_ID = "665f0c1a2b3c4d5e6f708192"
_LC_USER_CREATED = "2026-06-01T10:00:00.000Z"
SEVEN_DAYS_S = 7 * 24 * 3600.0
PRESET_ORDER_DEFAULT = 10000
"""Where a preset without `order` sorts, as in LibreChat's `getPresets`."""


def _seed_presets() -> list[JSONObject]:
    """The default preset and one other."""
    return [
        {
            "_id": object_id(3, 1),
            "presetId": "preset-default",
            "title": "Default",
            "user": _LC_USER_ID,
            "endpoint": "openAI",
            "model": "gpt-4o",
            "temperature": 0.7,
            "max_tokens": 4096,
            "defaultPreset": True,
            "order": 0,
            "createdAt": "2026-06-02T09:00:00.000Z",
            "updatedAt": "2026-06-02T09:00:00.000Z",
            "__v": 0,
        },
        {
            "_id": object_id(3, 2),
            "presetId": "preset-creative",
            "title": "Creative writing",
            "user": _LC_USER_ID,
            "endpoint": "anthropic",
            "model": "claude-sonnet-4-6",
            "temperature": 1,
            "maxOutputTokens": 8192,
            "createdAt": "2026-06-03T15:30:00.000Z",
            "updatedAt": "2026-06-03T15:30:00.000Z",
            "__v": 0,
        },
    ]


@dataclass
class RefreshSession:
    """One LibreChat login session: the hash of its current refresh token, and when it ends."""

    session_id: str
    token_hash: str
    expires_at: float


@dataclass
class LoginWindow:
    """The login rate limiter's fixed window for one client address."""

    started: float
    attempts: int = 0


@dataclass
class LibreChatAuth:
    """The native LibreChat's login: credentials, limits, issued tokens and sessions.

    Times in `access_tokens` (token -> `exp`) and `sessions` are seconds since the epoch;
    login windows use the monotonic clock.
    """

    email: str = SIM_LIBRECHAT_EMAIL
    password: str = SIM_LIBRECHAT_PASSWORD
    access_token_ttl_s: float = 900.0
    refresh_token_ttl_s: float = SEVEN_DAYS_S
    login_max: int = 7
    login_window_s: float = 300.0
    two_factor: bool = False
    token_clock_offset_s: float = 0.0
    """Added to the `iat`/`exp` of the access tokens issued: a server whose clock is off."""
    jwt_secret: str = f"{SECRET_CANARY}-lc-jwt-secret"
    refresh_secret: str = f"{SECRET_CANARY}-lc-refresh-secret"
    access_tokens: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, RefreshSession] = field(default_factory=dict)
    login_windows: dict[str, LoginWindow] = field(default_factory=dict)


@dataclass(kw_only=True)
class LibreChatWorld(UpstreamWorld):
    """The simulated LibreChat: its user, user settings and conversations (newest first).

    `settings` is the bizzy flavour's; `profile` holds the rest of the native user document
    (secrets included, which the native API never sends), `presets` the user's presets.
    """

    conversations: list[Conversation] = field(default_factory=list)
    profile: JSONObject = field(default_factory=dict)
    presets: list[JSONObject] = field(default_factory=list)
    auth: LibreChatAuth = field(default_factory=LibreChatAuth)
    legacy_convos: bool = False

    @classmethod
    def seed(cls) -> Self:
        """Build the seed LibreChat data: one admin user, forty conversations, two presets."""
        user: JSONObject = {
            "id": _LC_USER_ID,
            "username": "ada",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "role": "ADMIN",
            "provider": "local",
            "password": f"{SECRET_CANARY}-lc",
            "refreshToken": f"{SECRET_CANARY}-rt",
            # Canaries nested where LibreChat's own response whitelist lets them through
            # (both flavours serve this user's `personalization`).
            "personalization": {
                "memories": True,
                "jwt": f"eyJhbGciOiJIUzI1NiJ9.eyJ{SECRET_CANARY}.c2lnbmF0dXJl",
                "sessionTokens": [f"{SECRET_CANARY}-session"],
                "otpauthUrl": f"otpauth://totp/LibreChat:ada?secret={SECRET_CANARY}",
                "passphrase": f"{SECRET_CANARY}-passphrase",
                "mfaSeed": f"{SECRET_CANARY}-mfa-seed",
                "auth": {"pass": f"{SECRET_CANARY}-auth-pass"},
            },
        }
        settings: JSONObject = {
            "defaultModelId": "openai/gpt-4o",
            "defaultTemperature": 0.7,
            "defaultMaxTokens": 4096,
            "theme": "dark",
            "fontSize": "medium",
        }
        profile: JSONObject = {
            "emailVerified": True,
            "avatar": None,
            "plugins": [],
            "termsAccepted": True,
            "favorites": [{"model": "gpt-4o", "endpoint": "openAI"}, {"agentId": "agent_research"}],
            "createdAt": _LC_USER_CREATED,
            "updatedAt": "2026-06-20T08:00:00.000Z",
            "totpSecret": f"{SECRET_CANARY}-totp",
            "backupCodes": [{"codeHash": f"{SECRET_CANARY}-backup", "used": False}],
            "__v": 0,
        }
        return cls(
            user=user,
            settings=settings,
            conversations=_seed_conversations(),
            profile=profile,
            presets=_seed_presets(),
        )

    def next_stamp(self) -> datetime:
        """Now (to the millisecond), but always after the newest conversation's `updatedAt`.

        So every change gets a distinct, increasing time even within one millisecond.
        """
        newest = max((c.updated_at for c in self.conversations), default=None)
        now = to_millis(utcnow())
        return now if newest is None or now > newest else newest + ONE_MS

    def _next_number(self) -> int:
        numbers = [
            int(c.conversation_id[2:])
            for c in self.conversations
            if re.fullmatch(r"c-\d+", c.conversation_id)
        ]
        return max(numbers, default=0) + 1

    def find_conversation(self, conversation_id: str) -> Conversation | None:
        """Return the conversation with this id, or None."""
        return next((c for c in self.conversations if c.conversation_id == conversation_id), None)

    def add_conversation(
        self,
        title: str,
        *,
        endpoint: str = "openAI",
        model: str = "gpt-4o",
        message_count: int = 0,
        now: datetime | None = None,
    ) -> Conversation:
        """Start a conversation with the next id, created now, and put it first."""
        number = self._next_number()
        stamp = now or self.next_stamp()
        conversation = Conversation(
            conversation_id=f"c-{number:04d}",
            title=title,
            endpoint=endpoint,
            model=model,
            created_at=stamp,
            updated_at=stamp,
            message_count=message_count,
            mongo_id=object_id(1, number),
        )
        self.conversations.insert(0, conversation)
        return conversation

    def add_conversations(self, count: int) -> list[Conversation]:
        """Start `count` conversations at once, a millisecond apart, newest first in line."""
        first = self._next_number()
        start = self.next_stamp()
        added = [
            Conversation(
                conversation_id=f"c-{number:04d}",
                title=f"Bulk conversation {number}",
                endpoint="openAI",
                model="gpt-4o",
                created_at=start + i * ONE_MS,
                updated_at=start + i * ONE_MS,
                message_count=0,
                mongo_id=object_id(1, number),
            )
            for i, number in enumerate(range(first, first + count))
        ]
        self.conversations[:0] = reversed(added)
        return added

    def touch_conversation(
        self, conversation: Conversation, *, now: datetime | None = None
    ) -> None:
        """Mark the conversation as updated now, which makes it the most recent one."""
        conversation.updated_at = now or self.next_stamp()
        self.conversations.remove(conversation)
        self.conversations.insert(0, conversation)

    def remove_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation with this id; return whether there was one."""
        conversation = self.find_conversation(conversation_id)
        if conversation is None:
            return False
        self.conversations.remove(conversation)
        return True

    def find_preset(self, preset_id: str) -> JSONObject | None:
        """Return the preset with this `presetId`, or None."""
        return next((p for p in self.presets if p.get("presetId") == preset_id), None)

    def save_preset(self, preset_id: str, changes: JSONObject) -> JSONObject:
        """Upsert a preset as LibreChat's `savePreset` does, and return it.

        `defaultPreset: true` makes it the default (order 0) and clears the flag and order
        of every other preset; `defaultPreset: false` removes both from this one.
        """
        now = js_iso(utcnow())
        preset = self.find_preset(preset_id)
        if preset is None:
            number = 1 + max((int(p["_id"][4:], 16) for p in self.presets), default=0)
            preset = {"_id": object_id(3, number), "presetId": preset_id, "createdAt": now}
            self.presets.append(preset)
        changes = {k: v for k, v in changes.items() if k not in {"_id", "user", "createdAt"}}
        default = changes.pop("defaultPreset", None)
        preset.update(changes)
        if default is True:
            preset.update(defaultPreset=True, order=0)
            for other in self.presets:
                if other is not preset:
                    other.pop("defaultPreset", None)
                    other.pop("order", None)
        elif default is False:
            preset.pop("defaultPreset", None)
            preset.pop("order", None)
        preset.update(user=self.user.get("id"), updatedAt=now, __v=0)
        return preset

    def delete_presets(self, preset_id: str | None) -> int:
        """Delete the preset with this id, or every preset for None; return how many went."""
        kept = [p for p in self.presets if preset_id is not None and p.get("presetId") != preset_id]
        deleted = len(self.presets) - len(kept)
        self.presets[:] = kept
        return deleted

    def presets_in_order(self) -> list[JSONObject]:
        """The presets as `GET /api/presets` lists them: by `order`, then newest update first."""
        by_update = sorted(self.presets, key=lambda p: str(p.get("updatedAt", "")), reverse=True)
        return sorted(by_update, key=lambda p: _preset_order(p.get("order")))


def _preset_order(order: Any) -> float:
    if isinstance(order, int | float) and not isinstance(order, bool):
        return float(order)
    return float(PRESET_ORDER_DEFAULT)


@dataclass
class World:
    """Both simulated upstreams together."""

    anythingllm: AnythingLLMWorld = field(default_factory=AnythingLLMWorld.seed)
    librechat: LibreChatWorld = field(default_factory=LibreChatWorld.seed)

    @classmethod
    def seed(cls) -> Self:
        """Build both upstreams from the seed data."""
        return cls()

    def reset(self) -> None:
        """Restore both upstreams' seed data, faults and write logs in place."""
        self.anythingllm.reset()
        self.librechat.reset()
