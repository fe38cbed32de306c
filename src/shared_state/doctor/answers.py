"""What an upstream's answer looks like to the doctor: JSON, an HTML page (whose title,
and whether it holds a login form), a redirect (to where), or something else.

Only a bounded prefix of a body is read, and only short, whitespace-collapsed pieces of
it (a title, a path) ever reach the report."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

MAX_BODY_CHARS = 64 * 1024
"""How much of a body is looked at: a title and a form sit near the top."""
_MAX_SHOWN_CHARS = 80
_LOGIN_WORDS = ("login", "log-in", "signin", "sign_in", "sign-in", "oauth", "auth", "sso")

Kind = Literal["json", "html", "redirect", "other"]


@dataclass(frozen=True)
class Answer:
    """One answer, reduced to what the checks look at."""

    method: str
    path: str
    status: int
    kind: Kind
    media_type: str
    body: Any = None  # the parsed JSON, when `kind` is json
    title: str | None = None
    login_form: bool = False
    location: str | None = None  # a redirect's target, without its query

    @property
    def message(self) -> str | None:
        """The `message`, `error` or `detail` string of a JSON object body, if any."""
        if isinstance(self.body, dict):
            for key in ("message", "error", "detail"):
                value = self.body.get(key)
                if isinstance(value, str):
                    return shorten(value)
        return None

    def looks_like_login(self) -> bool:
        """A redirect to a login URL, or a page with a password field."""
        if self.kind == "redirect" and self.location is not None:
            return any(word in self.location.lower() for word in _LOGIN_WORDS)
        return self.login_form

    def describe(self) -> str:
        """What came back, in a few words: `HTTP 302, a redirect to /login`."""
        where = f"{self.method} {self.path}"
        if self.kind == "json":
            said = f": {self.message!r}" if self.message else ""
            return f"{where} answered HTTP {self.status} JSON{said}"
        if self.kind == "redirect":
            target = self.location or "nowhere"
            return f"{where} answered HTTP {self.status}, a redirect to {target}"
        if self.kind == "html":
            titled = f" titled {self.title!r}" if self.title else " without a title"
            form = ", with a password field" if self.login_form else ""
            return f"{where} answered HTTP {self.status} with an HTML page{titled}{form}"
        shown = self.media_type or "no content type"
        return f"{where} answered HTTP {self.status} with {shown}, not JSON"


def shorten(text: str) -> str:
    """Whitespace collapsed, at most 80 characters."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 1] + "…"


def read_answer(response: httpx.Response, method: str, path: str) -> Answer:
    """Classify `response` (to `method path`)."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    status = response.status_code
    if response.is_redirect:
        location = response.headers.get("location")
        shown = None
        if location:
            parts = urlsplit(location)
            # Never a query (it may carry a state token) nor user info.
            origin = f"{parts.scheme}://{parts.hostname}" if parts.hostname else ""
            if origin and parts.port:
                origin += f":{parts.port}"
            shown = shorten(f"{origin}{parts.path or '/'}")
        return Answer(method, path, status, "redirect", media_type, location=shown)
    text = response.content[:MAX_BODY_CHARS].decode("utf-8", errors="replace")
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            body = json.loads(text)
        except ValueError:
            return Answer(method, path, status, "other", f"{media_type} (malformed)")
        return Answer(method, path, status, "json", media_type, body=body)
    if media_type in ("text/html", "application/xhtml+xml") or re.match(
        r"\s*<(!doctype html|html)", text, re.IGNORECASE
    ):
        page = _Page()
        page.feed(text)
        title = shorten(page.title) if page.title.strip() else None
        return Answer(
            method, path, status, "html", media_type, title=title, login_form=page.password
        )
    return Answer(method, path, status, "other", media_type)


class _Page(HTMLParser):
    """Collects an HTML page's title and whether it has a password input."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.password = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "input" and ("type", "password") in [(k, (v or "").lower()) for k, v in attrs]:
            self.password = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and len(self.title) < MAX_BODY_CHARS:
            self.title += data
