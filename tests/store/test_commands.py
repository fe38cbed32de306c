"""The command queue against a real redis-server: a follower's sync or write handed to
the holder and answered; put back for the next holder; answered at once when the holder
steps down in the middle of it or fails; dropped when nobody waits for it any more."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from shared_state.errors import HolderUnavailable
from shared_state.store.commands import Command, CommandQueue
from shared_state.store.keys import StoreKeys

GENEROUS_S = 10.0
"""Far less than the callers' own waits below: an answer inside it came from the holder."""
CALLER_WAITS_S = 30.0


def queue(redis: Redis, prefix: str) -> CommandQueue:
    return CommandQueue(redis, redis, StoreKeys(prefix), wait_s=0.2)


async def serve_until_taken(server: CommandQueue, handle: Any) -> None:
    """`serve_once` until the handler has been called (a command was taken)."""
    taken = asyncio.Event()

    async def handler(command: Command) -> dict[str, Any] | None:
        taken.set()
        result: dict[str, Any] | None = await handle(command)
        return result

    while not taken.is_set():
        await server.serve_once(handler)


async def answer_from(
    redis: Redis, prefix: str, command: Command, handle: Any, *, step_down: bool = False
) -> dict[str, Any]:
    """The answer a caller gets for `command` from a server carrying it out with
    `handle` (and stepping down once it has taken it, with `step_down`)."""
    caller, server = queue(redis, prefix), queue(redis, prefix)
    calling = asyncio.create_task(caller.call(command, timeout_s=CALLER_WAITS_S))
    await asyncio.wait_for(serve_until_taken(server, handle), GENEROUS_S)
    if step_down:
        await asyncio.wait_for(server.aclose(), GENEROUS_S)
    return await asyncio.wait_for(calling, GENEROUS_S)


async def test_a_command_is_carried_out_by_the_server_and_answered(
    redis: Redis, prefix: str
) -> None:
    seen: list[Command] = []

    async def handle(command: Command) -> dict[str, Any]:
        seen.append(command)
        return {"outcome": "ok", "version": 7}

    answer = await answer_from(redis, prefix, {"op": "sync"}, handle)

    assert answer == {"outcome": "ok", "version": 7}
    assert [command["op"] for command in seen] == ["sync"]
    assert await redis.exists(StoreKeys(prefix).commands) == 0


async def test_a_command_put_back_is_carried_out_by_the_next_holder(
    redis: Redis, prefix: str
) -> None:
    caller, former, holder = queue(redis, prefix), queue(redis, prefix), queue(redis, prefix)

    async def not_holding(command: Command) -> None:
        return None  # this replica turned out not to hold the lease

    async def holding(command: Command) -> dict[str, Any]:
        return {"outcome": "ok", "version": 8}

    calling = asyncio.create_task(
        caller.call({"op": "write", "section": "ui"}, timeout_s=CALLER_WAITS_S)
    )
    await asyncio.wait_for(serve_until_taken(former, not_holding), GENEROUS_S)
    await asyncio.wait_for(serve_until_taken(holder, holding), GENEROUS_S)

    assert await asyncio.wait_for(calling, GENEROUS_S) == {"outcome": "ok", "version": 8}


async def test_a_holder_stepping_down_mid_command_tells_the_caller_at_once(
    redis: Redis, prefix: str
) -> None:
    """The command is cut short (it may have reached an upstream, so it is not run
    again): its caller hears so now, not at the end of its own wait."""
    never = asyncio.Event()

    async def stuck(command: Command) -> dict[str, Any]:
        await never.wait()  # an upstream write that does not return
        raise AssertionError("unreachable")

    command = {"op": "write", "section": "llm"}
    answer = await answer_from(redis, prefix, command, stuck, step_down=True)

    assert answer["outcome"] == "holder_unavailable"
    assert "stepped down" in answer["detail"]


async def test_a_command_that_fails_on_the_holder_is_answered_at_once(
    redis: Redis, prefix: str
) -> None:
    async def broken(command: Command) -> dict[str, Any]:
        raise RuntimeError("a bug in the holder")

    answer = await answer_from(redis, prefix, {"op": "sync"}, broken)

    assert answer["outcome"] == "holder_unavailable"
    assert "could not carry this out" in answer["detail"]


async def test_a_command_nobody_carried_out_in_time_is_refused_and_dropped(
    redis: Redis, prefix: str
) -> None:
    caller, server = queue(redis, prefix), queue(redis, prefix)

    with pytest.raises(HolderUnavailable, match=r"within 0\.3 s"):
        await caller.call({"op": "sync"}, timeout_s=0.3)

    async def must_not_run(command: Command) -> dict[str, Any]:
        raise AssertionError("a command nobody waits for was run")

    await server.serve_once(must_not_run)  # takes it, finds it expired, drops it
    assert await redis.exists(StoreKeys(prefix).commands) == 0
