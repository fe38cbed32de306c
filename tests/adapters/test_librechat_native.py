"""The native LibreChat adapter against the shapes of LibreChat 0.8.7 and 0.7.7: the user,
the default preset as LLM settings, cursor and legacy conversation pages read
incrementally, and LLM writes through `POST /api/presets` (upstream-apis.md B3-B6, D)."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import math
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.adapters.librechat_auth import LibreChatSession, StaticToken
from shared_state.adapters.librechat_native import LibreChatNative
from shared_state.domain.models import LlmValues, UiValues
from shared_state.errors import (
    UpstreamAuthError,
    UpstreamRejectedWrite,
    UpstreamResponseInvalid,
    UpstreamStatusError,
)

BASE_URL = "http://librechat.test"
TOKEN = "CANARY-static-token"
FIXTURES = Path(__file__).parent / "fixtures"
FORBIDDEN = ("/api/agents", "/api/assistants", "/api/keys")
SERVER_MANAGED = {"_id", "__v", "user", "createdAt", "updatedAt"}


def recorded(version: str, name: str) -> Any:
    """A JSON body recorded in the shape LibreChat `version` answers."""
    return json.loads((FIXTURES / f"librechat-{version}" / name).read_text())


def conversation_ids(snapshot_items: Sequence[dict[str, Any]] | None) -> list[str]:
    assert snapshot_items is not None
    return [item["id"][-1] for item in snapshot_items]


def encode_cursor(moment: str) -> str:
    document = json.dumps({"primary": moment, "secondary": moment}, separators=(",", ":"))
    return base64.b64encode(document.encode()).decode()


class FakeLibreChat:
    """LibreChat's user, preset and conversation routes, in memory.

    Conversations page like 0.8.7 (base64 cursors, `updatedAt < cursor` so equal moments
    at a page boundary are skipped) or, with `legacy=True`, like 0.7.7. Presets are saved
    the way `savePreset` does: a `$set` of the body, upserted by `presetId`."""

    def __init__(
        self,
        *,
        user: dict[str, Any],
        presets: list[dict[str, Any]],
        conversations: list[dict[str, Any]],
        legacy: bool = False,
    ) -> None:
        self.user = user
        self.presets = presets
        self.conversations = {c["conversationId"]: c for c in conversations}
        self.legacy = legacy
        self.failing: set[str] = set()  # "convos", "convos-after-first", "user", ...
        self.requests: list[httpx.Request] = []

    @classmethod
    def recorded(cls, version: str, **overrides: Any) -> FakeLibreChat:
        pages = sorted((FIXTURES / f"librechat-{version}").glob("convos-page-*.json"))
        conversations = [c for page in pages for c in json.loads(page.read_text())["conversations"]]
        fields: dict[str, Any] = {
            "user": recorded(version, "user.json"),
            "presets": recorded(version, "presets.json"),
            "conversations": conversations,
            "legacy": version == "0.7.7",
        }
        return cls(**{**fields, **overrides})

    def touch(self, suffix: str, moment: str, **changes: Any) -> None:
        """Update the conversation whose id ends with `suffix`, as a new message would."""
        (cid,) = [cid for cid in self.conversations if cid.endswith(suffix)]
        self.conversations[cid] = {**self.conversations[cid], "updatedAt": moment, **changes}

    def delete(self, suffix: str) -> None:
        (cid,) = [cid for cid in self.conversations if cid.endswith(suffix)]
        del self.conversations[cid]

    def default_preset(self) -> dict[str, Any] | None:
        return next((p for p in self.presets if p.get("defaultPreset")), None)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = (request.method, request.url.path)
        if route == ("GET", "/api/user"):
            return self._maybe_fail("user") or httpx.Response(200, json=self.user)
        if route == ("GET", "/api/presets"):
            return self._maybe_fail("presets") or httpx.Response(200, json=self.presets)
        if route == ("POST", "/api/presets"):
            return self._maybe_fail("save") or self._save(json.loads(request.content))
        if route == ("POST", "/api/presets/delete"):
            preset_id = json.loads(request.content).get("presetId")
            before = len(self.presets)
            self.presets = [p for p in self.presets if preset_id and p["presetId"] != preset_id]
            deleted = before - len(self.presets)
            return httpx.Response(201, json={"acknowledged": True, "deletedCount": deleted})
        if route == ("GET", "/api/convos"):
            if "cursor" in request.url.params and "convos-after-first" in self.failing:
                return httpx.Response(500, text="Error fetching conversations")
            return self._maybe_fail("convos") or self._convos(request.url.params)
        return httpx.Response(404, json={"message": "Endpoint not found"})

    def _maybe_fail(self, name: str) -> httpx.Response | None:
        if name in self.failing:
            return httpx.Response(500, json={"error": "CANARY-mongo-down"})
        return None

    def _save(self, body: dict[str, Any]) -> httpx.Response:
        update = {k: v for k, v in body.items() if k != "user"}
        if update.get("defaultPreset"):
            update["order"] = 0
            for other in self.presets:
                if other["presetId"] != update["presetId"]:
                    other.pop("defaultPreset", None)
                    other.pop("order", None)
        saved = next((p for p in self.presets if p["presetId"] == update["presetId"]), None)
        if saved is None:
            saved = {"_id": uuid.uuid4().hex[:24], "user": "665f", "__v": 0}
            self.presets.append(saved)
        saved.update(update)
        return httpx.Response(201, json=saved)

    def _ordered(self) -> list[dict[str, Any]]:
        return sorted(self.conversations.values(), key=lambda c: c["updatedAt"], reverse=True)

    def _convos(self, params: httpx.QueryParams) -> httpx.Response:
        ordered = self._ordered()
        if self.legacy:
            size = int(params.get("pageSize", 25))
            number = int(params.get("pageNumber", 1))
            chunk = ordered[(number - 1) * size : number * size]
            pages = max(1, math.ceil(len(ordered) / size))
            body = {"conversations": chunk, "pages": pages, "pageNumber": number, "pageSize": size}
            return httpx.Response(200, json=body)
        limit = int(params.get("limit", 25))
        if "cursor" in params:
            primary = json.loads(base64.b64decode(params["cursor"]))["primary"]
            ordered = [c for c in ordered if c["updatedAt"] < primary]
        chunk = ordered[:limit]
        more = len(ordered) > limit
        next_cursor = encode_cursor(chunk[-1]["updatedAt"]) if more else None
        return httpx.Response(200, json={"conversations": chunk, "nextCursor": next_cursor})

    def convos_calls(self) -> list[httpx.QueryParams]:
        return [r.url.params for r in self.requests if r.url.path == "/api/convos"]

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def data_api(client: httpx.AsyncClient, retry_policy: RetryPolicy) -> JsonApi:
    return JsonApi(client, source="librechat", retry=retry_policy, credentials=StaticToken(TOKEN))


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


def serve(wire: respx.MockRouter, fake: FakeLibreChat) -> FakeLibreChat:
    wire.route().mock(side_effect=fake.handle)
    return fake


def serve_recorded_pages(wire: respx.MockRouter, version: str) -> respx.Route:
    """`GET /api/convos` answered with the recorded pages, chosen by cursor or page number."""
    pages = [
        recorded(version, p.name)
        for p in sorted((FIXTURES / f"librechat-{version}").glob("convos-page-*.json"))
    ]
    by_cursor: dict[str | None, Any] = {None: pages[0]}
    if version != "0.7.7":
        by_cursor |= {page["nextCursor"]: nxt for page, nxt in itertools.pairwise(pages)}

    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if version == "0.7.7":
            return httpx.Response(200, json=pages[int(params["pageNumber"]) - 1])
        return httpx.Response(200, json=by_cursor[params.get("cursor")])

    return wire.get("/api/convos").mock(side_effect=answer)


def serve_recorded(wire: respx.MockRouter, version: str) -> respx.Route:
    wire.get("/api/user").respond(200, json=recorded(version, "user.json"))
    wire.get("/api/presets").respond(200, json=recorded(version, "presets.json"))
    return serve_recorded_pages(wire, version)


def with_default_preset(**fields: Any) -> list[dict[str, Any]]:
    return [{"presetId": "p-1", "title": "Mine", "defaultPreset": True, "order": 0, **fields}]


# --- the recorded shapes --------------------------------------------------------------------


async def test_fetch_087_builds_the_snapshot(data_api: JsonApi, wire: respx.MockRouter) -> None:
    """User as sent, LLM values from the default preset, no UI, every conversation with
    `conversationId` as `id`, newest first."""
    serve_recorded(wire, "0.8.7")
    adapter = LibreChatNative(data_api, page_size=2)

    snapshot = await adapter.fetch()

    assert snapshot.user == recorded("0.8.7", "user.json")
    assert snapshot.llm == LlmValues(
        provider="anthropic", model="claude-sonnet-4-5", temperature=0.5, max_tokens=8192
    )
    assert snapshot.ui == UiValues()
    assert snapshot.workspaces is None
    assert conversation_ids(snapshot.conversations) == ["5", "4", "3", "2", "1"]
    first = recorded("0.8.7", "convos-page-1.json")["conversations"][0]
    assert snapshot.conversations is not None
    assert snapshot.conversations[0] == {"id": first["conversationId"], **first}
    assert adapter.stored_fields == {
        "llm": frozenset({"provider", "model", "temperature", "max_tokens"})
    }


async def test_fetch_087_follows_the_cursor_to_the_last_page(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Each `nextCursor` is passed back as `cursor` until it is null."""
    route = serve_recorded(wire, "0.8.7")

    await LibreChatNative(data_api, page_size=2).fetch()

    params = [call.request.url.params for call in route.calls]
    assert len(params) == 3
    assert dict(params[0]) == {
        "sortBy": "updatedAt",
        "sortDirection": "desc",
        "limit": "2",
        "pageNumber": "1",
        "pageSize": "2",
    }
    assert params[1]["cursor"] == recorded("0.8.7", "convos-page-1.json")["nextCursor"]
    assert params[2]["cursor"] == recorded("0.8.7", "convos-page-2.json")["nextCursor"]
    assert all(p["limit"] == "2" and p["sortBy"] == "updatedAt" for p in params)


async def test_fetch_077_reads_legacy_pages_by_number(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A first answer with `pages` switches to `pageNumber`/`pageSize` paging; the full
    documents of 0.7.7 keep all their fields."""
    route = serve_recorded(wire, "0.7.7")

    snapshot = await LibreChatNative(data_api, page_size=2).fetch()

    params = [call.request.url.params for call in route.calls]
    assert [(p["pageNumber"], p["pageSize"]) for p in params] == [("1", "2"), ("2", "2")]
    assert "cursor" not in params[1]
    assert conversation_ids(snapshot.conversations) == ["3", "2", "1"]
    assert snapshot.conversations is not None
    oldest = recorded("0.7.7", "convos-page-2.json")["conversations"][0]
    assert snapshot.conversations[2] == {"id": oldest["conversationId"], **oldest}
    assert snapshot.llm == LlmValues(
        provider="openai", model="gpt-4-turbo", temperature=1, max_tokens=1024
    )


async def test_fetch_077_keeps_the_older_users_known_fields_but_no_secret(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """The pre-0.8.6 user document keeps its known-safe fields: no `refreshToken` sessions,
    no unknown extras such as `googleId`."""
    serve_recorded(wire, "0.7.7")

    snapshot = await LibreChatNative(data_api, page_size=2).fetch()

    assert snapshot.user is not None
    dropped = {"refreshToken", "googleId"}
    expected = {k: v for k, v in recorded("0.7.7", "user.json").items() if k not in dropped}
    assert snapshot.user == expected
    assert "CANARY" not in snapshot.model_dump_json()


async def test_user_id_falls_back_to_the_mongo_id(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A user document with `_id` only gets that as its `id`."""
    serve_recorded(wire, "0.7.7")
    user = recorded("0.7.7", "user.json")
    del user["id"]
    wire.get("/api/user").respond(200, json=user)

    snapshot = await LibreChatNative(data_api, page_size=2).fetch()

    assert snapshot.user is not None
    assert snapshot.user["id"] == user["_id"]


async def test_no_default_preset_leaves_every_llm_value_absent(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Presets without `defaultPreset: true` say nothing about the LLM settings."""
    serve_recorded(wire, "0.8.7")
    presets = recorded("0.8.7", "presets.json")
    del presets[0]["defaultPreset"]
    wire.get("/api/presets").respond(200, json=presets)

    snapshot = await LibreChatNative(data_api, page_size=2).fetch()

    assert snapshot.llm == LlmValues()


@pytest.mark.parametrize(
    ("endpoint", "overrides", "provider"),
    [
        ("openAI", None, "openai"),
        ("azureOpenAI", None, "azure"),
        ("anthropic", None, "anthropic"),
        ("google", None, "gemini"),
        ("bedrock", None, "bedrock"),
        ("assistants", None, "openai"),
        ("OpenRouter", None, "openrouter"),
        ("Ollama", {"Ollama": "ollama-local"}, "ollama-local"),
        ("google", {"google": "vertex"}, "vertex"),
    ],
)
async def test_the_default_presets_endpoint_names_the_provider(
    data_api: JsonApi,
    wire: respx.MockRouter,
    endpoint: str,
    overrides: dict[str, str] | None,
    provider: str,
) -> None:
    """Built-in endpoints map to provider names; `endpoint_providers` overrides and extends
    the table; any other endpoint is its name lower-cased."""
    serve_recorded(wire, "0.8.7")
    wire.get("/api/presets").respond(200, json=with_default_preset(endpoint=endpoint))

    snapshot = await LibreChatNative(data_api, page_size=2, endpoint_providers=overrides).fetch()

    assert snapshot.llm.provider == provider


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [
        ({"max_tokens": 1000, "maxOutputTokens": 2000, "maxTokens": 3000}, 1000),
        ({"maxOutputTokens": 2000, "maxTokens": 3000}, 2000),
        ({"max_tokens": None, "maxTokens": 3000}, 3000),
        ({}, None),
    ],
)
async def test_max_tokens_come_from_the_first_field_present(
    data_api: JsonApi, wire: respx.MockRouter, fields: dict[str, Any], max_tokens: int | None
) -> None:
    """`max_tokens`, else `maxOutputTokens`, else `maxTokens`."""
    serve_recorded(wire, "0.8.7")
    wire.get("/api/presets").respond(200, json=with_default_preset(endpoint="openAI", **fields))

    snapshot = await LibreChatNative(data_api, page_size=2).fetch()

    assert snapshot.llm.max_tokens == max_tokens


async def test_only_the_most_recent_conversations_are_kept(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """With `max_conversations=3` the three newest are kept and paging stops once they
    are read."""
    route = serve_recorded(wire, "0.8.7")

    snapshot = await LibreChatNative(data_api, page_size=2, max_conversations=3).fetch()

    assert conversation_ids(snapshot.conversations) == ["5", "4", "3"]
    assert route.call_count == 2


# --- incremental reads ----------------------------------------------------------------------


async def test_a_fetch_with_nothing_new_reads_one_page(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """After the first full scan, an unchanged list costs one `GET /api/convos`."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    first = await adapter.fetch()
    assert len(fake.convos_calls()) == 3

    second = await adapter.fetch()

    assert len(fake.convos_calls()) == 4
    assert "cursor" not in fake.convos_calls()[-1]
    assert second.conversations == first.conversations


async def test_an_updated_conversation_is_picked_up_and_moves_first(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """The oldest conversation gets a message: one page brings its new version to the top."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    await adapter.fetch()
    fake.touch("1", "2026-06-22T10:00:00.000Z", title="Renamed")

    snapshot = await adapter.fetch()

    assert len(fake.convos_calls()) == 4
    assert conversation_ids(snapshot.conversations) == ["1", "5", "4", "3", "2"]
    assert snapshot.conversations is not None
    assert snapshot.conversations[0]["title"] == "Renamed"


async def test_new_and_updated_conversations_spanning_pages_are_all_read(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Paging goes on while whole pages are newer than the watermark."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    await adapter.fetch()
    fake.touch("2", "2026-06-22T10:00:00.000Z")
    fake.touch("3", "2026-06-22T11:00:00.000Z")
    fake.conversations["c-6"] = {
        "conversationId": "c-6",
        "title": "Fresh",
        "updatedAt": "2026-06-22T12:00:00.000Z",
    }

    snapshot = await adapter.fetch()

    assert len(fake.convos_calls()) == 3 + 2
    assert conversation_ids(snapshot.conversations) == ["6", "3", "2", "5", "4", "1"]


async def test_a_deleted_conversation_disappears_at_the_next_full_scan(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Deletions are invisible to incremental reads; with `full_scan_every=3` the fourth
    fetch is a full scan and drops it."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=3)
    await adapter.fetch()
    fake.delete("3")

    kept = [conversation_ids((await adapter.fetch()).conversations) for _ in range(2)]
    after_full_scan = await adapter.fetch()

    assert kept == [["5", "4", "3", "2", "1"]] * 2
    assert conversation_ids(after_full_scan.conversations) == ["5", "4", "2", "1"]
    assert len(fake.convos_calls()) == 3 + 1 + 1 + 2


async def test_full_scan_every_one_always_reads_every_page(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """`full_scan_every=1` makes every fetch a full scan, so a deletion shows at once."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=1)
    await adapter.fetch()
    fake.delete("3")

    snapshot = await adapter.fetch()

    assert len(fake.convos_calls()) == 3 + 2
    assert conversation_ids(snapshot.conversations) == ["5", "4", "2", "1"]


async def test_legacy_pages_are_read_incrementally_too(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """On 0.7.7 an unchanged list also costs one page, and an update is picked up."""
    fake = serve(wire, FakeLibreChat.recorded("0.7.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    await adapter.fetch()
    await adapter.fetch()
    fake.touch("1", "2025-03-03T08:00:00.000Z")

    snapshot = await adapter.fetch()

    assert len(fake.convos_calls()) == 2 + 1 + 1
    assert conversation_ids(snapshot.conversations) == ["1", "3", "2"]


async def test_a_failed_fetch_keeps_the_previous_conversations(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A full scan that fails on its second page commits nothing: the next fetch is again
    a full scan and nothing read by the failed one is lost or half-kept."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=2)
    await adapter.fetch()
    await adapter.fetch()
    fake.failing.add("convos-after-first")

    with pytest.raises(UpstreamStatusError):
        await adapter.fetch()
    fake.failing.clear()
    calls_before = len(fake.convos_calls())
    snapshot = await adapter.fetch()

    assert conversation_ids(snapshot.conversations) == ["5", "4", "3", "2", "1"]
    assert len(fake.convos_calls()) - calls_before == 3


async def test_conversations_read_by_a_fetch_that_failed_elsewhere_are_read_again(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """When the user read fails, the conversations read alongside are not committed: the
    watermark stays, and the next fetch reads the update again."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    await adapter.fetch()
    fake.touch("2", "2026-06-22T10:00:00.000Z", title="Updated")
    fake.failing.add("user")

    with pytest.raises(UpstreamStatusError):
        await adapter.fetch()
    fake.failing.clear()
    snapshot = await adapter.fetch()

    assert conversation_ids(snapshot.conversations) == ["2", "5", "4", "3", "1"]


# --- failures -------------------------------------------------------------------------------


async def test_a_server_error_is_retried_then_raised(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A persistent 500 on `/api/user` is tried three times, then fails the fetch."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    fake.failing.add("user")

    with pytest.raises(UpstreamStatusError) as caught:
        await LibreChatNative(data_api, page_size=2).fetch()

    assert caught.value.status == 500
    assert fake.calls().count(("GET", "/api/user")) == 3
    assert "CANARY" not in str(caught.value)


async def test_one_server_error_on_a_page_costs_one_retry(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A page answered 500 once and then 200 is read, and paging goes on."""
    serve_recorded(wire, "0.8.7")
    pages = [recorded("0.8.7", f"convos-page-{n}.json") for n in (1, 2, 3)]
    route = wire.get("/api/convos").mock(
        side_effect=[
            httpx.Response(200, json=pages[0]),
            httpx.Response(500, text="Error fetching conversations"),
            httpx.Response(200, json=pages[1]),
            httpx.Response(200, json=pages[2]),
        ]
    )

    snapshot = await LibreChatNative(data_api, page_size=2).fetch()

    assert route.call_count == 4
    assert conversation_ids(snapshot.conversations) == ["5", "4", "3", "2", "1"]


@pytest.mark.parametrize(
    ("path", "answer", "message"),
    [
        (
            "/api/presets",
            httpx.Response(200, html="<!DOCTYPE html><title>CANARY</title>"),
            "GET /api/presets answered text/html, not JSON",
        ),
        (
            "/api/convos",
            httpx.Response(
                200,
                content=b'{"conversations": [CANARY',
                headers={"content-type": "application/json"},
            ),
            "GET /api/convos answered malformed JSON",
        ),
        (
            "/api/convos",
            httpx.Response(200, json=[{"conversationId": "CANARY"}]),
            "GET /api/convos answered an unexpected shape (body: model_type)",
        ),
        (
            "/api/convos",
            httpx.Response(200, json={"conversations": []}),
            "GET /api/convos answered an unexpected shape (body: value_error)",
        ),
        (
            "/api/convos",
            httpx.Response(200, json={"conversations": [{"title": "CANARY"}], "nextCursor": None}),
            "GET /api/convos answered an unexpected shape"
            " (conversations.0.conversationId: missing)",
        ),
        (
            "/api/convos",
            httpx.Response(
                200,
                json={
                    "conversations": [{"conversationId": "c", "updatedAt": "CANARY"}],
                    "nextCursor": None,
                },
            ),
            "GET /api/convos answered an unexpected shape (conversations.0.updatedAt: value_error)",
        ),
        (
            "/api/presets",
            httpx.Response(200, json={"message": "CANARY"}),
            "GET /api/presets answered an unexpected shape (body: list_type)",
        ),
        (
            "/api/user",
            httpx.Response(200, json=["CANARY"]),
            "GET /api/user answered an unexpected shape (body: model_type)",
        ),
    ],
)
async def test_answers_that_are_not_the_documented_json_are_invalid(
    data_api: JsonApi, wire: respx.MockRouter, path: str, answer: httpx.Response, message: str
) -> None:
    """HTML, malformed JSON and JSON of the wrong shape fail the fetch as
    `UpstreamResponseInvalid`, without quoting the body."""
    serve_recorded(wire, "0.8.7")
    wire.get(path).mock(return_value=answer)

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await LibreChatNative(data_api, page_size=2).fetch()

    assert str(caught.value) == f"librechat: {message}"


async def test_a_cursor_given_twice_is_invalid_not_an_endless_loop(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A server that keeps answering the same `nextCursor` fails the fetch."""
    serve_recorded(wire, "0.8.7")
    wire.get("/api/convos").respond(200, json=recorded("0.8.7", "convos-page-1.json"))

    with pytest.raises(UpstreamResponseInvalid, match="cursor it had given before"):
        await LibreChatNative(data_api, page_size=2).fetch()


async def test_refused_after_refresh_and_login_is_an_auth_error(
    client: httpx.AsyncClient, retry_policy: RetryPolicy, wire: respx.MockRouter
) -> None:
    """Data routes that refuse every token: one refresh, one new login, then refused
    credentials are reported (and no loop of logins)."""
    login = wire.post("/api/auth/login").mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={"token": f"CANARY-jwt-{uuid.uuid4()}", "user": {}},
            headers={"set-cookie": "refreshToken=CANARY-rt; Path=/; HttpOnly; Secure"},
        )
    )
    refresh = wire.post("/api/auth/refresh").respond(403, text="Invalid refresh token")
    wire.route(path__startswith="/api/").respond(401, json={"message": "Unauthorized"})
    session = LibreChatSession(
        JsonApi(client, source="librechat", retry=retry_policy),
        email="sync@example.com",
        password="CANARY-pw",
    )
    api = JsonApi(client, source="librechat", retry=retry_policy, credentials=session)

    with pytest.raises(UpstreamAuthError, match="HTTP 401") as caught:
        await LibreChatNative(api).fetch()

    assert refresh.call_count == 1
    assert login.call_count == 2
    assert "CANARY" not in str(caught.value)


# --- writes ---------------------------------------------------------------------------------


async def test_write_updates_the_default_preset_as_a_whole(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """The default preset is posted back whole (without LibreChat's bookkeeping fields)
    with the new endpoint, model, temperature and max tokens, `maxOutputTokens` in step."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    original = recorded("0.8.7", "presets.json")[0]

    previous = await LibreChatNative(data_api).write_settings(
        "llm", {"provider": "openai", "model": "gpt-4o", "temperature": 0.3, "max_tokens": 2048}
    )

    assert fake.calls() == [("GET", "/api/presets"), ("POST", "/api/presets")]
    body = json.loads(fake.requests[-1].content)
    assert body == {
        **{k: v for k, v in original.items() if k not in SERVER_MANAGED},
        "endpoint": "openAI",
        "model": "gpt-4o",
        "temperature": 0.3,
        "max_tokens": 2048,
        "maxOutputTokens": 2048,
    }
    assert previous == {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "temperature": 0.5,
        "max_tokens": 8192,
    }


async def test_write_returns_the_previous_values_of_exactly_the_written_fields(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A temperature-only write changes and returns the temperature alone."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))

    previous = await LibreChatNative(data_api).write_settings("llm", {"temperature": 0})

    assert previous == {"temperature": 0.5}
    body = json.loads(fake.requests[-1].content)
    assert body["temperature"] == 0
    assert body["endpoint"] == "anthropic"
    assert body["maxOutputTokens"] == 8192


async def test_write_back_restores_the_preset(data_api: JsonApi, wire: respx.MockRouter) -> None:
    """Writing back the returned values undoes the write, as the next fetch shows."""
    fake = serve(wire, FakeLibreChat.recorded("0.7.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    before = (await adapter.fetch()).llm
    original = copy.deepcopy(fake.default_preset())

    previous = await adapter.write_settings(
        "llm", {"provider": "anthropic", "model": "claude-3-5-sonnet", "max_tokens": 4000}
    )
    assert (await adapter.fetch()).llm.provider == "anthropic"
    await adapter.write_settings("llm", previous)

    assert (await adapter.fetch()).llm == before
    assert fake.default_preset() == original


async def test_writing_back_an_absent_value_sends_null(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """LibreChat `$set`s the body, so an absent previous value is written as `null`."""
    fake = serve(wire, FakeLibreChat(user={}, presets=with_default_preset(), conversations=[]))
    adapter = LibreChatNative(data_api)

    previous = await adapter.write_settings("llm", {"temperature": 0.3})
    await adapter.write_settings("llm", previous)

    assert previous == {"temperature": None}
    assert json.loads(fake.requests[-1].content)["temperature"] is None
    assert ("POST", "/api/presets/delete") not in fake.calls()
    assert len(fake.presets) == 1


async def test_write_without_a_default_preset_creates_one_and_rollback_deletes_it(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """No default preset: one is created; writing back the (absent) previous values
    deletes exactly that preset."""
    presets = recorded("0.8.7", "presets.json")[1:]
    fake = serve(wire, FakeLibreChat(user={}, presets=copy.deepcopy(presets), conversations=[]))
    adapter = LibreChatNative(data_api)

    previous = await adapter.write_settings("llm", {"model": "gpt-4o", "temperature": 0.4})

    created = json.loads(fake.requests[-1].content)
    assert created == {
        "presetId": created["presetId"],
        "title": "shared-state default",
        "defaultPreset": True,
        "model": "gpt-4o",
        "temperature": 0.4,
    }
    assert uuid.UUID(created["presetId"]).version == 4
    assert previous == {"model": None, "temperature": None}

    await adapter.write_settings("llm", previous)

    assert fake.calls()[-1] == ("POST", "/api/presets/delete")
    assert json.loads(fake.requests[-1].content) == {"presetId": created["presetId"]}
    assert fake.presets == presets


async def test_rollback_of_a_later_write_keeps_the_created_preset(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Only undoing the creating write deletes the preset; undoing a later write on it
    removes that write's fields alone."""
    fake = serve(wire, FakeLibreChat(user={}, presets=[], conversations=[]))
    adapter = LibreChatNative(data_api)
    await adapter.write_settings("llm", {"model": "gpt-4o"})

    previous = await adapter.write_settings("llm", {"temperature": 0.4})
    await adapter.write_settings("llm", previous)

    assert ("POST", "/api/presets/delete") not in fake.calls()
    preset = fake.default_preset()
    assert preset is not None
    assert (preset["model"], preset["temperature"]) == ("gpt-4o", None)


@pytest.mark.parametrize(
    ("provider", "endpoint"),
    [
        ("openai", "openAI"),
        ("azure", "azureOpenAI"),
        ("anthropic", "anthropic"),
        ("gemini", "google"),
        ("bedrock", "bedrock"),
        ("mistral", "mistral"),
    ],
)
async def test_write_maps_the_provider_to_its_endpoint(
    data_api: JsonApi, wire: respx.MockRouter, provider: str, endpoint: str
) -> None:
    """Known providers go back to LibreChat's endpoint names; others are used as is."""
    fake = serve(wire, FakeLibreChat(user={}, presets=with_default_preset(), conversations=[]))

    await LibreChatNative(data_api).write_settings("llm", {"provider": provider})

    assert json.loads(fake.requests[-1].content)["endpoint"] == endpoint


async def test_write_uses_the_configured_endpoint_of_a_provider(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """`endpoint_providers={"Ollama": "ollama"}` makes provider `ollama` endpoint `Ollama`."""
    fake = serve(wire, FakeLibreChat(user={}, presets=with_default_preset(), conversations=[]))

    await LibreChatNative(data_api, endpoint_providers={"Ollama": "ollama"}).write_settings(
        "llm", {"provider": "ollama"}
    )

    assert json.loads(fake.requests[-1].content)["endpoint"] == "Ollama"


async def test_writing_back_a_custom_endpoints_provider_restores_its_spelling(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """`OpenRouter` reads as provider `openrouter`; writing that back restores `OpenRouter`."""
    presets = with_default_preset(endpoint="OpenRouter", model="meta-llama/llama-3-70b")
    fake = serve(wire, FakeLibreChat(user={}, presets=presets, conversations=[]))
    adapter = LibreChatNative(data_api)

    previous = await adapter.write_settings("llm", {"provider": "anthropic"})
    await adapter.write_settings("llm", previous)

    assert previous == {"provider": "openrouter"}
    preset = fake.default_preset()
    assert preset is not None
    assert preset["endpoint"] == "OpenRouter"


async def test_a_write_is_never_retried(data_api: JsonApi, wire: respx.MockRouter) -> None:
    """A 500 on the preset POST is raised after exactly one call."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    fake.failing.add("save")

    with pytest.raises(UpstreamStatusError) as caught:
        await LibreChatNative(data_api).write_settings("llm", {"temperature": 0.1})

    assert caught.value.status == 500
    assert fake.calls().count(("POST", "/api/presets")) == 1


async def test_a_save_answered_without_the_preset_is_rejected(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """LibreChat answers a failed save with 201 `{"message": "Error saving preset"}`."""
    wire.post("/api/presets").respond(201, json={"message": "Error saving preset"})
    serve(wire, FakeLibreChat.recorded("0.8.7"))

    with pytest.raises(UpstreamRejectedWrite) as caught:
        await LibreChatNative(data_api).write_settings("llm", {"temperature": 0.1})

    assert str(caught.value) == "librechat: POST /api/presets answered without the saved preset"


async def test_ui_settings_are_not_written_to_librechat(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """LibreChat keeps theme and font size in the browser: no request is made."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))

    with pytest.raises(UpstreamRejectedWrite):
        await LibreChatNative(data_api).write_settings("ui", {"theme": "dark"})

    assert fake.calls() == []


async def test_the_adapter_never_calls_banned_or_secret_routes(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Fetches, a write and its rollback touch only the user, preset and convo routes."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=2)
    for _ in range(3):
        await adapter.fetch()
    previous = await adapter.write_settings("llm", {"provider": "gemini", "max_tokens": 100})
    await adapter.write_settings("llm", previous)

    paths = {path for _, path in fake.calls()}
    assert paths == {"/api/user", "/api/presets", "/api/convos"}
    assert not any(path.startswith(FORBIDDEN) for path in paths)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
