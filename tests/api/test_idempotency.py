"""`Idempotency-Key` on the writes (contract §8): a repeat replays the first answer
without writing again, another body is 422, a concurrent repeat waits, keys are bounded
in time and number."""

from __future__ import annotations

import asyncio

import pytest

from shared_state.errors import IdempotencyKeyReused, UpstreamUnavailable
from shared_state.service.idempotency import MemoryIdempotencyStore, StoredAnswer, fingerprint
from tests.api.conftest import ALLM_FIELDS, Service, make_settings, start_service
from tests.fakes import GatedUpstream, HeldWriteUpstream, make_snapshot

BASE = "/api/shared-state"
LLM = BASE + "/llm-settings"
UI = BASE + "/ui-settings"


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def test_a_repeat_replays_the_first_answer_without_writing_again(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """Same key, same body (keys in another order, other spacing): the first answer, once
    written upstream."""
    first = await service.client.post(
        LLM, json={"model": "gpt-4.1", "temperature": 0.5}, headers=key("k-1")
    )
    version = service.runtime.manager.state.version
    repeat = await service.client.post(
        LLM,
        content=b'{ "temperature": 0.5,  "model": "gpt-4.1" }',
        headers={**key("k-1"), "Content-Type": "application/json"},
    )

    assert first.status_code == repeat.status_code == 200
    assert repeat.content == first.content
    assert (len(anythingllm.writes), len(librechat.writes)) == (1, 1)
    assert service.runtime.manager.state.version == version


async def test_a_replay_is_not_a_write_even_after_the_state_moved(
    service: Service, librechat: GatedUpstream
) -> None:
    """The replay is the first answer, not a new write of the same values: another write
    in between stays."""
    first = await service.client.post(UI, json={"theme": "light"}, headers=key("ui-1"))
    await service.client.post(UI, json={"theme": "dark"})

    repeat = await service.client.post(UI, json={"theme": "light"}, headers=key("ui-1"))

    assert repeat.json() == first.json() == {"theme": "light", "fontSize": "large"}
    assert service.runtime.manager.state.settings.ui.theme == "dark"
    assert len(librechat.writes) == 2


async def test_the_same_key_with_another_body_is_422(
    service: Service, anythingllm: GatedUpstream
) -> None:
    """Another body under a used key is refused, and nothing is written."""
    await service.client.post(LLM, json={"model": "a"}, headers=key("k"))

    response = await service.client.post(LLM, json={"model": "b"}, headers=key("k"))

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert len(anythingllm.writes) == 1
    assert service.runtime.manager.state.settings.llm.model == "a"


async def test_a_failed_write_is_replayed_as_it_failed(
    service: Service, anythingllm: GatedUpstream, librechat: GatedUpstream
) -> None:
    """A 502 is the answer for that key: repeating it after the upstream recovered
    replays the 502 and calls no upstream."""
    librechat.fail_writes = UpstreamUnavailable("librechat", "down")
    first = await service.client.post(LLM, json={"model": "m"}, headers=key("f"))
    librechat.fail_writes = None
    calls = (len(anythingllm.writes), len(librechat.writes))

    repeat = await service.client.post(LLM, json={"model": "m"}, headers=key("f"))

    assert first.status_code == repeat.status_code == 502
    assert repeat.json() == first.json()
    assert repeat.json()["code"] == "upstream_write_failed"
    assert (len(anythingllm.writes), len(librechat.writes)) == calls


async def test_a_412_is_replayed_too(service: Service) -> None:
    """A write refused for its `If-Match` keeps that answer under its key."""
    headers = {**key("p"), "If-Match": 'W/"not-current"'}
    first = await service.client.post(UI, json={"theme": "light"}, headers=headers)
    repeat = await service.client.post(UI, json={"theme": "light"}, headers=headers)

    assert first.status_code == repeat.status_code == 412
    assert repeat.json() == first.json()
    assert service.runtime.manager.state.settings.ui.theme != "light"


async def test_keys_are_per_route(service: Service, librechat: GatedUpstream) -> None:
    """One key on both routes is two keys: each write is made."""
    llm = await service.client.post(LLM, json={"temperature": 1}, headers=key("shared"))
    ui = await service.client.post(UI, json={"theme": "light"}, headers=key("shared"))

    assert (llm.status_code, ui.status_code) == (200, 200)
    assert len(librechat.writes) == 2


async def test_without_a_key_every_write_is_made(
    service: Service, anythingllm: GatedUpstream
) -> None:
    """No key, no replay: the same body twice is two writes."""
    for _ in range(2):
        assert (await service.client.post(LLM, json={"model": "m"})).status_code == 200

    assert len(anythingllm.writes) == 2


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"x" * 256, id="256-characters"),
        pytest.param("clé".encode(), id="not-ascii"),
        pytest.param(b"a\x01b", id="control-character"),
        pytest.param(b"a\x7fb", id="del"),
    ],
)
async def test_an_invalid_key_is_422_and_nothing_is_written(
    service: Service, anythingllm: GatedUpstream, value: bytes
) -> None:
    """A key must be 1-255 printable ASCII characters."""
    response = await service.client.post(
        LLM, json={"model": "m"}, headers=[(b"Idempotency-Key", value)]
    )

    assert response.status_code == 422
    assert response.json() == {
        "detail": "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
        "code": "invalid_idempotency_key",
    }
    assert anythingllm.writes == []


async def test_the_longest_and_oddest_valid_keys_work(service: Service) -> None:
    """255 characters, spaces and punctuation inside are a key."""
    for value in ("k" * 255, "a b~!{}\"'", "1"):
        response = await service.client.post(UI, json={"theme": "dark"}, headers=key(value))
        assert response.status_code == 200, value


async def test_a_repeat_during_the_first_waits_for_it() -> None:
    """A repeat sent while the first is still writing gets the first's answer when it
    is in, and the upstream sees one write."""
    anythingllm = HeldWriteUpstream("anythingllm", make_snapshot(), stored_fields=ALLM_FIELDS)
    async with start_service(make_settings(), [anythingllm]) as service:
        first = asyncio.create_task(
            service.client.post(LLM, json={"model": "m"}, headers=key("slow"))
        )
        await anythingllm.write_started.wait()
        repeat = asyncio.create_task(
            service.client.post(LLM, json={"model": "m"}, headers=key("slow"))
        )
        anythingllm.write_gate.set()
        answers = await asyncio.gather(first, repeat)

    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].content == answers[1].content
    assert len(anythingllm.writes) == 1


# --- the store ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_expire_after_their_time() -> None:
    """After the TTL a key is new again: the write runs once more."""
    clock = Clock()
    store = MemoryIdempotencyStore(ttl_s=60, clock=clock)
    claim = await store.claim("r", "k", "d1")
    await store.finish(claim, StoredAnswer(200, b"{}"))
    assert (await store.claim("r", "k", "d1")).replay == StoredAnswer(200, b"{}")

    clock.now += 61

    again = await store.claim("r", "k", "d2")  # another body is no longer "reused"
    assert again.replay is None


async def test_at_most_max_keys_are_kept_the_oldest_go_first() -> None:
    """The key count is bounded; the oldest key is the one forgotten."""
    store = MemoryIdempotencyStore(max_keys=3)
    for number in range(4):
        claim = await store.claim("r", f"k{number}", "d")
        await store.finish(claim, StoredAnswer(200, b"%d" % number))

    assert len(store) == 3
    assert (await store.claim("r", "k0", "other")).replay is None  # forgotten: runs anew
    assert (await store.claim("r", "k3", "d")).replay == StoredAnswer(200, b"3")


async def test_the_default_bounds_are_the_contracts() -> None:
    """24 h and 10,000 keys: the 10,001st key evicts the first."""
    store = MemoryIdempotencyStore()
    for number in range(10_001):
        claim = await store.claim("r", str(number), "d")
        await store.finish(claim, StoredAnswer(200, b""))

    assert len(store) == 10_000
    with pytest.raises(IdempotencyKeyReused):
        await store.claim("r", "10000", "other")
    assert (await store.claim("r", "0", "other")).replay is None


async def test_a_claim_on_a_running_key_waits_for_its_answer() -> None:
    """A repeat claimed while the first is unfinished gets the first's answer once it is
    in, not a claim of its own. (Tasks start in order: the repeat is waiting before the
    first finishes.)"""
    store = MemoryIdempotencyStore()
    first = await store.claim("r", "k", "d")
    waiting = asyncio.create_task(store.claim("r", "k", "d"))
    finishing = asyncio.create_task(store.finish(first, StoredAnswer(502, b"failed")))

    repeat = await waiting
    await finishing

    assert repeat.replay == StoredAnswer(502, b"failed")


async def test_an_abandoned_claim_lets_the_waiting_repeat_run() -> None:
    """A first request that ended without an answer (crashed, cancelled) leaves the key
    free: the repeat that waited for it runs the write itself."""
    store = MemoryIdempotencyStore()
    first = await store.claim("r", "k", "d")
    waiting = asyncio.create_task(store.claim("r", "k", "d"))

    await store.abandon(first)
    second = await waiting

    assert second.replay is None
    await store.finish(second, StoredAnswer(201, b"x"))
    assert (await store.claim("r", "k", "d")).replay == StoredAnswer(201, b"x")


def test_fingerprints_compare_parsed_json() -> None:
    """Key order and `1.0` against `1` do not count; values and `true` against `1` do."""
    assert fingerprint({"a": 1, "b": [1.0]}) == fingerprint({"b": [1], "a": 1.0})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert fingerprint({"a": True}) != fingerprint({"a": 1})
