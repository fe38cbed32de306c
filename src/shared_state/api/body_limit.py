"""`SHARED_STATE_MAX_BODY_BYTES`, enforced while the body is read.

Starlette (1.x) has a `RequestBodyLimitMiddleware`, but it answers in plain text, and
checking in a middleware of its own would come before the token check; the edge needs
the limit after the token and with our `{"detail", "code"}` body, so it uses this
small `receive` wrapper instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Send

_DISCONNECT: Message = {"type": "http.disconnect"}


def declared_length(value: bytes | None) -> int | None:
    """The `Content-Length` a request declares, or None (absent, or not a number)."""
    if value is None or not value.isdigit():
        return None
    return int(value)


class LimitedBody:
    """The `receive` and `send` an app gets for one request whose body may grow past
    `max_bytes` (chunked, or no declared length).

    Past the limit it answers for the app (`answer_too_large`, while no response has
    started), tells the app the client left (so nothing is parsed or acted on), and
    drops whatever the app sends after that.
    """

    def __init__(
        self,
        receive: Receive,
        send: Send,
        *,
        max_bytes: int,
        answer_too_large: Callable[[Send], Awaitable[None]],
    ) -> None:
        self._receive = receive
        self._send = send
        self._max_bytes = max_bytes
        self._answer_too_large = answer_too_large
        self.received_bytes = 0
        self.is_cut_off = False
        self._has_answered = False
        self._response_started = False

    async def receive(self) -> Message:
        if self.is_cut_off:
            return _DISCONNECT
        message = await self._receive()
        if message["type"] == "http.request":
            self.received_bytes += len(message.get("body", b""))
            if self.received_bytes > self._max_bytes:
                self.is_cut_off = True
                if not self._response_started:
                    self._has_answered = True
                    await self._answer_too_large(self._send)
                return _DISCONNECT
        return message

    async def send(self, message: Message) -> None:
        if self._has_answered:
            return
        if message["type"] == "http.response.start":
            self._response_started = True
        await self._send(message)
