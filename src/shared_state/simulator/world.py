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
"""The bearer token the simulated LibreChat expects by default."""

ReadFault = Literal["ok", "error", "html", "malformed", "wrong_shape", "slow"]
WriteFault = Literal["ok", "fail"]
READ_FAULTS: tuple[ReadFault, ...] = get_args(ReadFault)
WRITE_FAULTS: tuple[WriteFault, ...] = get_args(WriteFault)
DEFAULT_SLOW_DELAY_S = 30.0


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


@dataclass
class Faults:
    """How the simulated upstream misbehaves: on reads, on writes, and how slowly."""

    reads: ReadFault = "ok"
    writes: WriteFault = "ok"
    delay_s: float = DEFAULT_SLOW_DELAY_S


@dataclass(frozen=True)
class WriteRecord:
    """One write request the upstream received, and whether it was applied."""

    path: str
    body: Any
    accepted: bool


@dataclass
class Workspace:
    """An AnythingLLM workspace; `documents` counts the documents embedded in it."""

    id: int
    name: str
    slug: str
    created_at: datetime
    openai_temp: float | None = None
    chat_provider: str | None = None
    chat_model: str | None = None
    documents: int = 0


@dataclass
class Conversation:
    """A LibreChat conversation (its messages are only counted)."""

    conversation_id: str
    title: str
    endpoint: str
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int


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

    @classmethod
    def seed(cls) -> Self:
        """Build this upstream's world from the seed data."""
        raise NotImplementedError

    def reset(self) -> None:
        """Restore the seed data in place, and clear the faults and the write log."""
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


@dataclass(kw_only=True)
class AnythingLLMWorld(UpstreamWorld):
    """The simulated AnythingLLM: its admin user, system settings and workspaces."""

    workspaces: list[Workspace] = field(default_factory=list)

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
            )
            for number, (name, temp, provider, model, documents, days) in enumerate(
                _SEED_WORKSPACES, start=1
            )
        ]
        return cls(user=user, settings=settings, workspaces=workspaces)

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


def _seed_conversations() -> list[Conversation]:
    """Forty conversations about a day and a half apart, newest first."""
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
            )
        )
    conversations.reverse()
    return conversations


@dataclass(kw_only=True)
class LibreChatWorld(UpstreamWorld):
    """The simulated LibreChat: its user, user settings and conversations (newest first)."""

    conversations: list[Conversation] = field(default_factory=list)

    @classmethod
    def seed(cls) -> Self:
        """Build the seed LibreChat data: one admin user and forty conversations."""
        user: JSONObject = {
            "id": "665f0c1a2b3c4d5e6f708192",
            "username": "ada",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "role": "ADMIN",
            "provider": "local",
            "password": f"{SECRET_CANARY}-lc",
            "refreshToken": f"{SECRET_CANARY}-rt",
        }
        settings: JSONObject = {
            "defaultModelId": "openai/gpt-4o",
            "defaultTemperature": 0.7,
            "defaultMaxTokens": 4096,
            "theme": "dark",
            "fontSize": "medium",
        }
        return cls(user=user, settings=settings, conversations=_seed_conversations())

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
        numbers = [
            int(c.conversation_id[2:])
            for c in self.conversations
            if re.fullmatch(r"c-\d+", c.conversation_id)
        ]
        stamp = now or utcnow()
        conversation = Conversation(
            conversation_id=f"c-{max(numbers, default=0) + 1:04d}",
            title=title,
            endpoint=endpoint,
            model=model,
            created_at=stamp,
            updated_at=stamp,
            message_count=message_count,
        )
        self.conversations.insert(0, conversation)
        return conversation

    def touch_conversation(
        self, conversation: Conversation, *, now: datetime | None = None
    ) -> None:
        """Mark the conversation as updated now, which makes it the most recent one."""
        conversation.updated_at = now or utcnow()
        self.conversations.remove(conversation)
        self.conversations.insert(0, conversation)

    def remove_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation with this id; return whether there was one."""
        conversation = self.find_conversation(conversation_id)
        if conversation is None:
            return False
        self.conversations.remove(conversation)
        return True


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
