"""What a LibreChat sync costs: unchanged pages are not parsed again (the same snapshot
comes back), a change is named by the list's delta, incremental reads stop at
`max_conversations`, big rebuilds still come out right, and the contract §4 id rule
(an upstream's own `id` is kept) holds for both LibreChat flavours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.adapters.librechat_auth import StaticToken
from shared_state.adapters.librechat_bizzy import LibreChatBizzy
from shared_state.adapters.librechat_native import LibreChatNative
from shared_state.domain.items import ItemList
from shared_state.domain.models import UpstreamSnapshot
from shared_state.errors import UpstreamResponseInvalid
from tests.adapters.test_librechat_native import BASE_URL, TOKEN, FakeLibreChat, serve

CONVERSATION_5 = "b3c1e0f2-5a6b-4c7d-8e9f-000000000005"
CONVERSATION_4 = "b3c1e0f2-5a6b-4c7d-8e9f-000000000004"


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


def conversations_of(snapshot: UpstreamSnapshot) -> ItemList:
    assert snapshot.conversations is not None
    return snapshot.conversations


def moment(n: int) -> str:
    """The n-th minute of a day after every recorded conversation."""
    return f"2026-07-01T{n // 60:02d}:{n % 60:02d}:00.000Z"


def conversation(cid: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"conversationId": cid, "title": f"Chat {cid}", "updatedAt": moment(n), **fields}


# --- unchanged pages --------------------------------------------------------------------


async def test_a_fetch_with_nothing_new_gives_back_the_same_snapshot(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Identical answers give the identical snapshot object and conversation list."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    first = await adapter.fetch()

    second = await adapter.fetch()

    assert second is first
    assert second.conversations is first.conversations
    assert len(fake.convos_calls()) == 3 + 1


async def test_a_full_scan_of_unchanged_pages_gives_back_the_same_snapshot(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Every page read again byte for byte (a full scan each time) changes nothing: the
    conversations remembered from those pages are all still there, none removed."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=1)
    first = await adapter.fetch()

    second = await adapter.fetch()
    third = await adapter.fetch()

    assert second is first
    assert third is first
    assert len(fake.convos_calls()) == 3 * 3
    assert len(conversations_of(third)) == 5


async def test_legacy_unchanged_pages_give_back_the_same_snapshot(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """On 0.7.7's numbered pages too, nothing new means the very same snapshot."""
    serve(wire, FakeLibreChat.recorded("0.7.7"))
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=1)
    first = await adapter.fetch()

    assert await adapter.fetch() is first


async def test_a_changed_preset_gives_a_new_snapshot_with_the_same_conversations(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Only the answer that changed is new: the conversation list object is kept."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    first = await adapter.fetch()
    preset = fake.default_preset()
    assert preset is not None
    preset["temperature"] = 0.9

    second = await adapter.fetch()

    assert second is not first
    assert second.llm.temperature == 0.9
    assert second.conversations is first.conversations


# --- what changed -----------------------------------------------------------------------


async def test_a_conversation_changed_on_page_one_is_the_whole_delta(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A new message in one conversation: the new list names exactly it as updated."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    previous = conversations_of(await adapter.fetch())
    fake.touch("4", "2026-06-22T10:00:00.000Z", title="Renamed")

    current = conversations_of(await adapter.fetch())

    delta = current.changes_since(previous)
    assert (delta.added, delta.updated, delta.removed) == ((), (CONVERSATION_4,), ())
    assert list(current.ids())[:2] == [CONVERSATION_4, CONVERSATION_5]
    assert current.get(CONVERSATION_4) == {
        "id": CONVERSATION_4,
        **fake.conversations[CONVERSATION_4],
    }


async def test_a_new_conversation_is_the_whole_delta(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A conversation that appears is named as added, and nothing else."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    previous = conversations_of(await adapter.fetch())
    fake.conversations["c-new"] = conversation("c-new", 0)

    current = conversations_of(await adapter.fetch())

    delta = current.changes_since(previous)
    assert (delta.added, delta.updated, delta.removed) == (("c-new",), (), ())


async def test_a_conversation_whose_updated_at_stayed_is_taken_as_unchanged(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """LibreChat moves `updatedAt` on every save, so an unmoved one is the one kept: the
    page is new, yet the snapshot is the same object."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2)
    first = await adapter.fetch()
    fake.conversations[CONVERSATION_5] = {**fake.conversations[CONVERSATION_5], "extra": 1}

    second = await adapter.fetch()

    assert second is first


# --- the cap on incremental reads -------------------------------------------------------


async def test_an_incremental_read_stops_at_max_conversations_new_ones(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """Ten new conversations with `max_conversations=3`: the incremental fetch reads the
    two pages that hold the three newest, not all five, and keeps those three."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, max_conversations=3)
    await adapter.fetch()
    assert len(fake.convos_calls()) == 2
    for n in range(10):
        fake.conversations[f"new-{n}"] = conversation(f"new-{n}", n)

    snapshot = await adapter.fetch()

    assert len(fake.convos_calls()) == 2 + 2
    assert list(conversations_of(snapshot).ids()) == ["new-9", "new-8", "new-7"]


async def test_after_a_capped_read_the_kept_conversations_are_still_found(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """The cap cuts the kept list short; every conversation still in it is found by id,
    and the next incremental fetch reads on from it."""
    fake = serve(wire, FakeLibreChat.recorded("0.8.7"))
    adapter = LibreChatNative(data_api, page_size=2, max_conversations=3)
    await adapter.fetch()
    for n in range(10):
        fake.conversations[f"new-{n}"] = conversation(f"new-{n}", n)
    kept = conversations_of(await adapter.fetch())
    fake.touch("new-8", moment(100), title="Again")

    after = conversations_of(await adapter.fetch())

    assert [kept.get(key) for key in kept.ids()] == list(kept)
    assert list(after.ids()) == ["new-8", "new-9", "new-7"]
    assert after.get("new-8") == {"id": "new-8", **fake.conversations["new-8"]}


async def test_a_first_sync_of_many_conversations_comes_out_in_order(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """More changes than are rebuilt on the event loop (600 new ones) give the same list
    as any other sync: every conversation, newest first, with ids."""
    fake = serve(
        wire,
        FakeLibreChat(
            user={"id": "u"},
            presets=[],
            conversations=[conversation(f"c-{n:03d}", n) for n in range(600)],
        ),
    )
    adapter = LibreChatNative(data_api, page_size=100)

    conversations = conversations_of(await adapter.fetch())

    assert len(conversations) == 600
    assert list(conversations.ids()) == [f"c-{n:03d}" for n in reversed(range(600))]
    assert conversations[0] == {"id": "c-599", **fake.conversations["c-599"]}


# --- the id rule (contract §4) ----------------------------------------------------------


async def test_native_keeps_a_conversations_own_id_and_finds_it_by_that_id(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """An upstream `id` is kept as the item's id, and the list is keyed by it; one
    without (or with a null one) gets its `conversationId`."""
    fake = serve(
        wire,
        FakeLibreChat(
            user={"id": "u"},
            presets=[],
            conversations=[
                conversation("c-1", 3, id="own-1"),
                conversation("c-2", 2),
                conversation("c-3", 1, id=None),
            ],
        ),
    )
    adapter = LibreChatNative(data_api, page_size=2)

    conversations = conversations_of(await adapter.fetch())

    assert list(conversations.ids()) == ["own-1", "c-2", "c-3"]
    assert conversations.get("own-1") == fake.conversations["c-1"]
    assert conversations.get("c-1") is None
    assert conversations.get("c-2") == {"id": "c-2", **fake.conversations["c-2"]}
    assert conversations.get("c-3") == {**fake.conversations["c-3"], "id": "c-3"}


async def test_native_tells_an_own_id_conversation_unchanged_and_changed(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A conversation with its own `id` is recognised from sync to sync: unchanged it
    keeps the snapshot, updated it is one update (not an addition beside the old one)."""
    fake = serve(
        wire,
        FakeLibreChat(
            user={"id": "u"},
            presets=[],
            conversations=[conversation("c-1", 3, id="own-1"), conversation("c-2", 2)],
        ),
    )
    adapter = LibreChatNative(data_api, page_size=2, full_scan_every=1)
    first = await adapter.fetch()
    assert await adapter.fetch() is first
    fake.touch("c-1", moment(10), title="Moved on")

    current = conversations_of(await adapter.fetch())

    delta = current.changes_since(conversations_of(first))
    assert (delta.added, delta.updated, delta.removed) == ((), ("own-1",), ())
    assert len(current) == 2


@pytest.mark.parametrize("bad_id", [{"nested": 1}, ["x"], 1.5])
async def test_native_refuses_a_conversation_id_that_is_not_a_string_or_integer(
    data_api: JsonApi, wire: respx.MockRouter, bad_id: Any
) -> None:
    """An `id` no URL can name is an invalid answer, not an unexpected error."""
    serve(
        wire,
        FakeLibreChat(
            user={"id": "u"}, presets=[], conversations=[conversation("c-1", 1, id=bad_id)]
        ),
    )

    with pytest.raises(UpstreamResponseInvalid, match="unexpected shape"):
        await LibreChatNative(data_api).fetch()


def serve_bizzy(librechat_wire: respx.MockRouter, conversations: list[dict[str, Any]]) -> None:
    librechat_wire.get("/api/user/me").respond(200, json={"id": "u", "username": "ada"})
    librechat_wire.get("/api/user/settings").respond(200, json={"theme": "dark"})
    librechat_wire.get("/api/conversations").respond(200, json=conversations)


async def test_bizzy_keeps_a_conversations_own_id(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """Bizzy conversations keep their own `id`; `id` comes from `conversationId` only
    where there is none, and one with an `id` alone keeps just that."""
    serve_bizzy(
        librechat_wire,
        [
            {"id": "own-1", "conversationId": "c-1", "title": "Both"},
            {"conversationId": "c-2", "title": "Conversation id only"},
            {"id": 7, "title": "Id only"},
        ],
    )

    conversations = conversations_of(await librechat.fetch())

    assert list(conversations.ids()) == ["own-1", "c-2", "7"]
    assert conversations.get("own-1") == {"id": "own-1", "conversationId": "c-1", "title": "Both"}
    assert conversations.get("c-2") == {
        "id": "c-2",
        "conversationId": "c-2",
        "title": "Conversation id only",
    }
    assert conversations.get("7") == {"id": 7, "title": "Id only"}


async def test_bizzy_gives_back_the_same_snapshot_for_the_same_answers(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """Identical answers give the identical snapshot; a changed list gives a new one."""
    serve_bizzy(librechat_wire, [{"conversationId": "c-1", "title": "One"}])
    first = await librechat.fetch()
    second = await librechat.fetch()
    serve_bizzy(librechat_wire, [{"conversationId": "c-1", "title": "Renamed"}])

    third = await librechat.fetch()

    assert second is first
    assert third is not first
    assert conversations_of(third).get("c-1") == {
        "id": "c-1",
        "conversationId": "c-1",
        "title": "Renamed",
    }


# --- hostile answers --------------------------------------------------------------------


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
async def test_nan_in_a_conversation_page_is_an_invalid_answer(
    data_api: JsonApi, wire: respx.MockRouter, constant: bytes
) -> None:
    """`NaN` and `Infinity` are not JSON: a page holding one is `UpstreamResponseInvalid`."""
    wire.get("/api/user").respond(200, json={"id": "u"})
    wire.get("/api/presets").respond(200, json=[])
    page = (
        b'{"conversations":[{"conversationId":"c-1","updatedAt":"2026-07-01T00:00:00.000Z",'
        b'"score":%s}],"nextCursor":null}' % constant
    )
    wire.get("/api/convos").respond(200, content=page, content_type="application/json")

    with pytest.raises(UpstreamResponseInvalid, match="malformed JSON"):
        await LibreChatNative(data_api).fetch()


async def test_nan_in_the_presets_is_an_invalid_answer(
    data_api: JsonApi, wire: respx.MockRouter
) -> None:
    """A `NaN` temperature in `GET /api/presets` is refused, not read as a float."""
    wire.get("/api/presets").respond(
        200,
        content=b'[{"presetId":"p","defaultPreset":true,"temperature":NaN}]',
        content_type="application/json",
    )
    serve(wire, FakeLibreChat(user={"id": "u"}, presets=[], conversations=[]))

    with pytest.raises(UpstreamResponseInvalid, match="malformed JSON"):
        await LibreChatNative(data_api).fetch()
