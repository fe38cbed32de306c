"""Syncs and writes that a replica hands to the lease holder, through Redis (contract
§11: "a write that arrives at any replica is carried out by the holder").

A follower `call`s: it pushes the command (`RPUSH <prefix>:commands`, JSON with an id
and the time after which nobody waits for it any more) and waits on its own reply list
(`BLPOP <prefix>:reply:<id>`). The holder `serve`s: it pops commands one at a time,
runs each in a task of its own (a write waits behind a sync in the holder's upstream
lock, as it would locally), and pushes the answer to the reply list, which expires soon
after. No replica needs to know another's address, a command sent during a takeover
waits for the new holder, and one that nobody took in time is dropped, not run late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared_state.errors import HolderUnavailable, StoreUnavailable
from shared_state.store.keys import StoreKeys
from shared_state.store.tasks import stop_task

log = logging.getLogger(__name__)

Command = dict[str, Any]
Handler = Callable[[Command], Awaitable[dict[str, Any] | None]]
"""Carries a command out: its answer, or None when this replica turned out not to hold
the lease (the command goes back to the front of the queue, for the one that does)."""

REPLY_TTL_MS = 60_000
"""How long an answer waits for a caller that went away."""
STOP_WITHIN_S = 2.0
"""How long a stepping-down holder lets a running command finish, and then waits for it
to end once cancelled."""
STEPPED_DOWN = {
    "outcome": "holder_unavailable",
    "detail": "The syncing replica stepped down while carrying this out; it may have "
    "reached an upstream. GET the state, then try again if it is needed.",
}
FAILED = {
    "outcome": "holder_unavailable",
    "detail": "The syncing replica could not carry this out (its log says why).",
}
MAX_COMMAND_BYTES = 1_000_000
"""A command is a write's fields (bounded by the body limit) or a sync: far below this."""


class CommandQueue:
    """Both ends of the queue. `blocking` is the client that waits in Redis (`BLPOP`):
    its socket timeout is longer than `wait_s`."""

    def __init__(
        self, redis: Redis, blocking: Redis, keys: StoreKeys, *, wait_s: float = 1.0
    ) -> None:
        self._redis = redis
        self._blocking = blocking
        self._keys = keys
        self._wait_s = wait_s
        self._running: set[asyncio.Task[None]] = set()

    async def call(self, command: Command, *, timeout_s: float) -> dict[str, Any]:
        """Hand `command` to the holder and wait for its answer: `StoreUnavailable` when
        Redis does not answer, `HolderUnavailable` when no holder answered within
        `timeout_s` (it is then dropped, not run later)."""
        command_id = uuid.uuid4().hex
        body = json.dumps({**command, "id": command_id, "expiresAt": time.time() + timeout_s})
        try:
            await self._redis.rpush(self._keys.commands, body)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while (remaining := deadline - loop.time()) > 0:
                popped = await self._blocking.blpop(
                    [self._keys.reply(command_id)], timeout=min(self._wait_s, remaining)
                )
                if popped is not None:
                    answer: dict[str, Any] = json.loads(popped[1])
                    return answer
        except (RedisError, OSError) as error:
            raise StoreUnavailable(
                f"Redis did not answer ({type(error).__name__}); nothing was changed."
            ) from error
        raise HolderUnavailable(
            f"No syncing replica carried this out within {timeout_s:g} s; try again shortly."
        )

    async def serve_once(self, handle: Handler) -> None:
        """Wait (at most `wait_s`) for one command and start it; the holder calls this in
        a loop. Redis errors are the caller's to report."""
        popped = await self._blocking.blpop([self._keys.commands], timeout=self._wait_s)
        if popped is None:
            return
        command = _parse(popped[1])
        if command is None:
            return
        if float(command["expiresAt"]) < time.time():
            log.info("dropped a %s command nobody waits for any more", command.get("op"))
            return
        task = asyncio.create_task(self._run(command, handle), name="replica-command")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def aclose(self) -> None:
        """End the commands still running (the holder is stepping down): each has a
        moment to finish (without the lease it stops short of the upstreams and goes
        back to the queue), then it is cancelled and its caller told at once."""
        await asyncio.gather(
            *(
                stop_task(task, grace_s=STOP_WITHIN_S, within_s=STOP_WITHIN_S)
                for task in list(self._running)
            )
        )

    async def _run(self, command: Command, handle: Handler) -> None:
        try:
            answer = await handle(command)
        except asyncio.CancelledError:
            # Cut short by a step-down: it may have reached an upstream, so it is not
            # run again; its caller hears now rather than at the end of its wait.
            await asyncio.shield(self._answer(command, STEPPED_DOWN))
            raise
        except Exception:
            log.exception("a %s command failed", command.get("op"))
            answer = FAILED
        if answer is None:
            await self._put_back(command)
        else:
            await self._answer(command, answer)

    async def _answer(self, command: Command, answer: dict[str, Any]) -> None:
        reply = self._keys.reply(str(command["id"]))
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(reply, json.dumps(answer))
                pipe.pexpire(reply, REPLY_TTL_MS)
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning(
                "could not answer a %s command: %s", command.get("op"), type(error).__name__
            )

    async def _put_back(self, command: Command) -> None:
        """At the front of the queue, for the replica that holds the lease."""
        try:
            await self._redis.lpush(self._keys.commands, json.dumps(command))
        except (RedisError, OSError) as error:
            log.warning(
                "could not put a %s command back: %s", command.get("op"), type(error).__name__
            )


def _parse(raw: bytes | str) -> Command | None:
    """A command, or None (logged) for anything else found in the queue."""
    try:
        if len(raw) > MAX_COMMAND_BYTES:
            raise ValueError("too large")
        command = json.loads(raw)
        if not isinstance(command, dict) or not isinstance(command.get("id"), str):
            raise ValueError("no id")
        float(command["expiresAt"])
    except (ValueError, KeyError, TypeError) as error:
        log.warning("dropped an unreadable command from the queue: %s", error)
        return None
    return command
