"""LibreChat, `native` flavour: the real API of LibreChat 0.8.7 (and the legacy
conversation pages of 0.7.7 and earlier), authenticated by `librechat_auth`.

`GET /api/user`, `GET /api/presets` (the default preset holds the LLM settings) and
`GET /api/convos` (read incrementally), writes through `POST /api/presets`. LibreChat
keeps UI settings in the browser, so this upstream stores no `ui` fields.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Required

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, model_validator, with_config
from typing_extensions import TypedDict

from shared_state.adapters.http import JsonApi, gather_reads
from shared_state.adapters.memo import SnapshotMemo
from shared_state.adapters.wire import WireModel, WireUser
from shared_state.domain.items import ItemList
from shared_state.domain.models import (
    Item,
    LlmValues,
    SourceName,
    UpstreamSnapshot,
    WritableSection,
)
from shared_state.errors import UpstreamRejectedWrite, UpstreamResponseInvalid

ENDPOINT_PROVIDERS: Mapping[str, str] = {
    "openAI": "openai",
    "azureOpenAI": "azure",
    "anthropic": "anthropic",
    "google": "gemini",
    "bedrock": "bedrock",
    "assistants": "openai",
    "azureAssistants": "azure",
}
"""LibreChat endpoint → the provider name used in the state; others are lower-cased."""

PROVIDER_ENDPOINTS: Mapping[str, str] = {
    "openai": "openAI",
    "azure": "azureOpenAI",
    "anthropic": "anthropic",
    "gemini": "google",
    "bedrock": "bedrock",
}
"""The reverse, for writes; an unknown provider is used as the endpoint name as is."""

CREATED_PRESET_TITLE = "shared-state default"

_CONVOS_PATH = "/api/convos"
_PRESETS_PATH = "/api/presets"
_MAX_TOKENS_TWINS = ("maxOutputTokens", "maxTokens")
_LLM_PRESET_FIELDS = ("endpoint", "model", "temperature", "max_tokens", *_MAX_TOKENS_TWINS)
# Kept by LibreChat itself; echoing them into its `$set` update is at best useless.
_SERVER_MANAGED = frozenset({"_id", "__v", "user", "createdAt", "updatedAt"})
_OLDEST = datetime.min.replace(tzinfo=UTC)
_CHANGES_ON_THE_LOOP = 500


def parse_moment(value: str) -> datetime:
    """An ISO timestamp as LibreChat writes it (`2026-06-21T09:30:00.000Z`), in UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _User(WireUser):
    mongo_id: str | None = Field(None, alias="_id")

    def item(self) -> dict[str, Any]:
        """Every field LibreChat sent, with `id` taken from `_id` where it sent none."""
        user = self.model_dump(by_alias=True, exclude_unset=True)
        return {**user, "id": self.mongo_id if self.id is None else self.id}


class _Preset(WireModel):
    preset_id: str | None = Field(None, alias="presetId")
    default_preset: bool | None = Field(None, alias="defaultPreset")
    endpoint: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_output_tokens: int | None = Field(None, alias="maxOutputTokens")
    max_tokens_camel: int | None = Field(None, alias="maxTokens")

    def raw(self) -> dict[str, Any]:
        """The preset as LibreChat sent it (fields it did not send stay absent)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def _is_a_moment(value: str | None) -> str | None:
    if value is not None:
        parse_moment(value)
    return value


@with_config(ConfigDict(extra="allow"))
class _Conversation(TypedDict, total=False):
    """A conversation as `GET /api/convos` lists it: these fields checked, the others
    kept as they came. A dict, not a model: ten thousand of them are read per full scan."""

    conversationId: Required[Annotated[str, Field(min_length=1)]]
    updatedAt: Annotated[str | None, AfterValidator(_is_a_moment)]
    endpoint: str | None
    id: str | int | None


def _rank(conversation: _Conversation) -> float:
    """A conversation's place in the list, newest first (the oldest: no `updatedAt`)."""
    updated_at = conversation.get("updatedAt")
    return -(_OLDEST if updated_at is None else parse_moment(updated_at)).timestamp()


def _key(conversation: _Conversation) -> str:
    """A conversation's key in the list: its own `id` where it has one (contract §4),
    else its `conversationId`, as `_item` makes its `id`."""
    own = conversation.get("id")
    return conversation["conversationId"] if own is None else str(own)


def _item(conversation: _Conversation) -> Item:
    """Every field LibreChat sent, with an `id` from `conversationId` where it sent none."""
    fields: Item = dict(conversation)
    if fields.get("id") is None:
        fields.pop("id", None)  # a null `id` is none: it must not override the derived one
        return {"id": conversation["conversationId"], **fields}
    return fields


class _ConvoPage(WireModel):
    """One page of `GET /api/convos`: `{conversations, nextCursor}` since 0.7.8, or the
    legacy `{conversations, pages, pageNumber, pageSize}` up to 0.7.7."""

    conversations: list[_Conversation]
    next_cursor: str | None = Field(None, alias="nextCursor")
    pages: int | None = None
    page_number: int | None = Field(None, alias="pageNumber")

    @model_validator(mode="after")
    def _is_a_known_format(self) -> _ConvoPage:
        if self.pages is None and "next_cursor" not in self.model_fields_set:
            raise ValueError("a page needs nextCursor or pages")
        return self

    @property
    def is_legacy(self) -> bool:
        return self.pages is not None


class _DeleteAnswer(WireModel):
    deleted_count: int | None = Field(None, alias="deletedCount")


_USER = TypeAdapter(_User)
_PRESETS = TypeAdapter(list[_Preset])
_PRESET = TypeAdapter(_Preset)
_CONVO_PAGE = TypeAdapter(_ConvoPage)
_DELETE_ANSWER = TypeAdapter(_DeleteAnswer)


_Request = tuple[tuple[str, Any], ...]
"""A page request's parameters, sorted: what a remembered page is filed under."""


@dataclass(frozen=True)
class _PageSeen:
    """What a page held, remembered by the digest of its bytes: a page that comes back
    byte for byte is not parsed again."""

    digest: bytes
    ranks: dict[str, float]
    newest_rank: float
    oldest_rank: float
    next_cursor: str | None
    pages: int | None


@dataclass
class _Scan:
    """One read of the conversation list, committed only when the whole fetch succeeded."""

    watermark_rank: float | None  # None: a full scan
    changed: dict[str, tuple[Item, float]] = dataclass_field(default_factory=dict)
    seen: dict[str, float] = dataclass_field(
        default_factory=dict
    )  # key -> rank of its newest version
    endpoints: dict[str, str] = dataclass_field(default_factory=dict)
    # A full scan reads every conversation: the kept ones' ranks, looked up at dict speed.
    kept_ranks: dict[str, float] | None = None
    pages_seen: dict[_Request, _PageSeen] = dataclass_field(default_factory=dict)

    @property
    def is_full(self) -> bool:
        return self.watermark_rank is None


class LibreChatNative:
    """LibreChat through its own API, with a JWT from a `LibreChatSession` or `StaticToken`.

    Conversations are kept between fetches: the first fetch and every `full_scan_every`-th
    one read every page (hard deletions and archived conversations vanish only then); the
    others read pages only while they hold conversations at least as new as the newest
    already seen, so a fetch where nothing changed reads one page.
    """

    name: SourceName = "librechat"
    stored_fields: Mapping[WritableSection, frozenset[str]] = {
        "llm": frozenset({"provider", "model", "temperature", "max_tokens"}),
    }

    def __init__(
        self,
        api: JsonApi,
        *,
        max_conversations: int = 10_000,
        full_scan_every: int = 20,
        page_size: int = 100,
        endpoint_providers: Mapping[str, str] | None = None,
    ) -> None:
        self._api = api
        self._max_conversations = max_conversations
        self._full_scan_every = full_scan_every
        self._page_size = page_size
        self._endpoint_providers = {**ENDPOINT_PROVIDERS, **(endpoint_providers or {})}
        self._provider_endpoints = {
            **PROVIDER_ENDPOINTS,
            **{provider: endpoint for endpoint, provider in (endpoint_providers or {}).items()},
        }
        # Endpoints outside both tables, met in presets and conversations: the way back
        # from a provider such as "openrouter" to the custom endpoint "OpenRouter".
        self._seen_endpoints: dict[str, str] = {}
        self._conversations = ItemList.ranked()
        self._pages_seen: dict[_Request, _PageSeen] = {}
        self._incremental_since_full_scan: int | None = None
        self._created_preset_ids: set[str] = set()
        self._snapshots = SnapshotMemo()

    async def fetch(self) -> UpstreamSnapshot:
        user, presets, scan = await gather_reads(
            self._api.get("/api/user", _USER),
            self._api.get(_PRESETS_PATH, _PRESETS),
            self._scan_conversations(),
        )
        await self._commit(scan)
        default = _default_preset(presets)
        self._learn_endpoints(_endpoints_default_last(presets, default))
        inputs = (user, presets, self._conversations)
        return self._snapshots.get(
            inputs,
            lambda: UpstreamSnapshot(
                user=user.item(),
                llm=self._llm_values(default) if default else LlmValues(),
                conversations=self._conversations,
            ),
        )

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        if section != "llm":
            raise UpstreamRejectedWrite(
                self.name, f"LibreChat stores no {section} settings (they live in the browser)"
            )
        unknown = set(values) - self.stored_fields["llm"]
        if unknown:
            raise ValueError(f"LibreChat stores no llm field {sorted(unknown)}")
        presets = await self._api.get(_PRESETS_PATH, _PRESETS)
        current = _default_preset(presets)
        # The default preset's endpoint is learnt last, so that writing back its provider
        # restores that very endpoint (a custom one such as "OpenRouter" included).
        self._learn_endpoints(_endpoints_default_last(presets, current))
        old = self._llm_values(current) if current else LlmValues()
        previous = {field: getattr(old, field) for field in values}
        is_removal = all(value is None for value in values.values())
        if current is None:
            if is_removal:
                return previous  # nothing to remove: there is no default preset
            preset_id = str(uuid.uuid4())
            preset: dict[str, Any] = {
                "presetId": preset_id,
                "title": CREATED_PRESET_TITLE,
                "defaultPreset": True,
            }
            self._created_preset_ids.add(preset_id)
        else:
            preset = {k: v for k, v in current.raw().items() if k not in _SERVER_MANAGED}
        body, written = self._apply(preset, values)
        # Undoing the write that created the preset: delete it rather than keep it empty.
        if (
            is_removal
            and body.get("presetId") in self._created_preset_ids
            and all(body.get(field) is None for field in _LLM_PRESET_FIELDS)
        ):
            await self._delete_created_preset(body["presetId"])
            return previous
        answer = await self._api.post(_PRESETS_PATH, body, _PRESET)
        self._check_saved(answer, body, written)
        return previous

    def unwritable_reason(self, section: WritableSection, values: Mapping[str, Any]) -> str | None:
        """Why `values` cannot be stored here (a provider with no known endpoint), or None:
        propagation asks before writing, rather than guess an endpoint name."""
        provider = values.get("provider")
        if section != "llm" or provider is None:
            return None
        if provider in self._provider_endpoints or provider in self._seen_endpoints:
            return None
        return (
            f"LibreChat has no endpoint known for provider {provider!r} "
            "(LIBRECHAT_ENDPOINT_PROVIDERS maps more)"
        )

    # --- conversations -----------------------------------------------------------------

    async def _scan_conversations(self) -> _Scan:
        """Read what changed in the conversation list; the kept list is not touched.

        A page is compared with what it held last time before it is parsed, and each
        conversation with the kept one before it counts as changed, so the work is what
        changed. An incremental read stops once it has `max_conversations` new ones."""
        is_due = (
            self._incremental_since_full_scan is None
            or self._incremental_since_full_scan >= self._full_scan_every - 1
        )
        kept = self._conversations
        scan = _Scan(watermark_rank=None if is_due else kept.first_rank)
        if scan.is_full:
            scan.kept_ranks = kept.ranks_by_id()
        async with aclosing(self._pages(scan)) as pages:
            async for page in pages:
                if page is None:  # the same bytes as last time: nothing new on it
                    continue
                self._read_page(page, scan)
                if scan.is_full and len(scan.seen) >= self._max_conversations:
                    break
                if not scan.is_full and len(scan.changed) >= self._max_conversations:
                    break
        return scan

    def _read_page(self, page: _ConvoPage, scan: _Scan) -> None:
        kept = self._conversations
        for conversation in page.conversations:
            rank = _rank(conversation)
            if scan.watermark_rank is not None and rank > scan.watermark_rank:
                continue  # older than the newest already kept: nothing new
            key = _key(conversation)
            if scan.seen.get(key, rank + 1) <= rank:
                continue  # a version at least as new was on an earlier page
            scan.seen[key] = rank
            # LibreChat moves `updatedAt` on every save of a conversation: one whose moment
            # stayed is the one kept, and costs no rendering to tell.
            kept_rank = scan.kept_ranks.get(key) if scan.kept_ranks else kept.rank_of(key)
            if kept_rank == rank:
                scan.changed.pop(key, None)
                continue
            scan.changed[key] = (_item(conversation), rank)
            if endpoint := conversation.get("endpoint"):
                scan.endpoints.setdefault(endpoint, endpoint)

    async def _pages(self, scan: _Scan) -> AsyncGenerator[_ConvoPage | None, None]:
        """The pages of the conversation list, newest first, in whichever format the
        server answers (detected from the first page), until the last or an empty one, or
        (incremental) the first page that reaches what is already kept. A page that came
        back byte for byte as last time is yielded as None (its conversations are known)."""
        params: dict[str, Any] = {
            "sortBy": "updatedAt",
            "sortDirection": "desc",
            "limit": self._page_size,
            # Ignored since 0.7.8; up to 0.7.7 these are the only paging parameters.
            "pageNumber": 1,
            "pageSize": self._page_size,
        }
        is_legacy: bool | None = None
        page_number = 1
        cursors: set[str] = set()
        while True:
            request = tuple(sorted(params.items()))
            raw = await self._api.get_bytes(_CONVOS_PATH, **params)
            digest = hashlib.blake2b(raw, digest_size=16).digest()
            seen = self._pages_seen.get(request)
            if seen is not None and seen.digest == digest and _is_kept(seen, self._conversations):
                scan.pages_seen[request] = seen
                for key, rank in seen.ranks.items():
                    if scan.seen.get(key, rank + 1) > rank:
                        scan.seen[key] = rank
                yield None
                summary = seen
            else:
                page = self._api.parse(raw, "GET", _CONVOS_PATH, _CONVO_PAGE)
                summary = _PageSeen(
                    digest=digest,
                    ranks={_key(c): _rank(c) for c in reversed(page.conversations)},
                    newest_rank=_rank(page.conversations[0]) if page.conversations else 0.0,
                    oldest_rank=_rank(page.conversations[-1]) if page.conversations else 0.0,
                    next_cursor=page.next_cursor,
                    pages=page.pages,
                )
                scan.pages_seen[request] = summary
                yield page
            if is_legacy is None:
                is_legacy = summary.pages is not None
                if is_legacy:
                    params = {"pageSize": self._page_size}
                else:
                    del params["pageNumber"], params["pageSize"]
            if not summary.ranks:
                return
            # Incremental: paging goes on only while a whole page is newer than what is
            # kept; `>=` re-reads the watermark's own moment, which a cursor can skip.
            if scan.watermark_rank is not None and summary.oldest_rank >= scan.watermark_rank:
                return
            if summary.pages is not None:
                if page_number >= summary.pages:
                    return
                page_number += 1
                params["pageNumber"] = page_number
            else:
                if summary.next_cursor is None:
                    return
                if summary.next_cursor in cursors:
                    raise UpstreamResponseInvalid(
                        self.name, f"GET {_CONVOS_PATH} answered a cursor it had given before"
                    )
                cursors.add(summary.next_cursor)
                params["cursor"] = summary.next_cursor

    async def _commit(self, scan: _Scan) -> None:
        kept = self._conversations
        removed = kept.ids_not_in(scan.seen.keys()) if scan.is_full else set()
        replace = partial(
            kept.replaced, scan.changed, removed=removed, limit=self._max_conversations
        )
        # Rebuilding costs what changed; thousands of changes (a first sync) would hold
        # the event loop for tens of milliseconds, so they are rebuilt off it.
        is_large = len(scan.changed) > _CHANGES_ON_THE_LOOP
        self._conversations = await asyncio.to_thread(replace) if is_large else replace()
        # A full scan's pages replace what was remembered; an incremental read adds its own.
        self._pages_seen = (
            scan.pages_seen if scan.is_full else {**self._pages_seen, **scan.pages_seen}
        )
        self._learn_endpoints(reversed(scan.endpoints))
        if scan.is_full:
            self._incremental_since_full_scan = 0
        elif self._incremental_since_full_scan is not None:
            self._incremental_since_full_scan += 1

    # --- presets -----------------------------------------------------------------------

    def _provider_of(self, endpoint: str) -> str:
        return self._endpoint_providers.get(endpoint, endpoint.lower())

    def _endpoint_of(self, provider: str) -> str:
        known = self._provider_endpoints.get(provider) or self._seen_endpoints.get(provider)
        return known or provider

    def _learn_endpoints(self, endpoints: Iterable[str | None]) -> None:
        """Remember custom endpoints by provider; a later one replaces an earlier one."""
        for endpoint in endpoints:
            if endpoint and endpoint not in self._endpoint_providers:
                self._seen_endpoints[self._provider_of(endpoint)] = endpoint

    def _llm_values(self, preset: _Preset) -> LlmValues:
        max_tokens = preset.max_tokens
        for twin in (preset.max_output_tokens, preset.max_tokens_camel):
            max_tokens = twin if max_tokens is None else max_tokens
        return LlmValues(
            provider=self._provider_of(preset.endpoint) if preset.endpoint else None,
            model=preset.model,
            temperature=preset.temperature,
            max_tokens=max_tokens,
        )

    def _apply(
        self, preset: dict[str, Any], values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The preset with `values` written in, and the preset fields that were written.
        A `None` is sent as `null`: LibreChat `$set`s the body, so an absent field would
        keep its value instead of being removed."""
        written: dict[str, Any] = {}
        for field, value in values.items():
            if field == "provider":
                written["endpoint"] = None if value is None else self._endpoint_of(value)
            elif field == "max_tokens":
                written["max_tokens"] = value
                for twin in _MAX_TOKENS_TWINS:
                    if preset.get(twin) is not None:
                        written[twin] = value
            else:
                written[field] = value
        return {**preset, **written, "defaultPreset": True}, written

    def _check_saved(self, answer: _Preset, body: dict[str, Any], written: dict[str, Any]) -> None:
        # LibreChat answers a failed save with 201 `{"message": ...}`: no preset in it.
        where = f"POST {_PRESETS_PATH}"
        if answer.preset_id != body["presetId"]:
            raise UpstreamRejectedWrite(self.name, f"{where} answered without the saved preset")
        saved = answer.raw()
        if any(saved.get(field) != value for field, value in written.items()):
            raise UpstreamRejectedWrite(self.name, f"{where} saved other values than were sent")

    async def _delete_created_preset(self, preset_id: str) -> None:
        # An empty presetId would make LibreChat delete every preset of the user.
        if not preset_id:
            raise ValueError("refusing to delete a preset without an id")
        await self._api.post(f"{_PRESETS_PATH}/delete", {"presetId": preset_id}, _DELETE_ANSWER)
        self._created_preset_ids.discard(preset_id)


def _is_kept(seen: _PageSeen, kept: ItemList) -> bool:
    """Whether every conversation of a remembered page is still in the kept list."""
    return all(kept.has(key) for key in seen.ranks)


def _default_preset(presets: list[_Preset]) -> _Preset | None:
    return next((p for p in presets if p.default_preset), None)


def _endpoints_default_last(presets: list[_Preset], default: _Preset | None) -> list[str | None]:
    return [p.endpoint for p in presets if p is not default] + [
        default.endpoint if default else None
    ]
