"""One upstream under examination, and the checks every upstream shares: it answers at
all, it answers JSON, and the API flavour that answers is the one configured.

Requests go through the adapters' own `JsonApi` (so the same client, transport, headers
and timeout as `serve`), sent once: the doctor reports a failure, it does not retry it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared_state.adapters.http import JsonApi
from shared_state.config import ApiFlavour
from shared_state.doctor.answers import Answer, read_answer
from shared_state.doctor.clock import MAX_SKEW_S, date_header, describe_skew, issued_at
from shared_state.doctor.report import Check
from shared_state.errors import UpstreamError, UpstreamUnavailable

Recogniser = Callable[[Answer], bool]
"""Whether an answer is what the API of one flavour answers to its probe."""

OTHER: Mapping[ApiFlavour, ApiFlavour] = {"native": "bizzy", "bizzy": "native"}


@dataclass(frozen=True)
class Reply:
    """One answer as the doctor keeps it."""

    answer: Answer
    elapsed_ms: float
    date: float | None  # its Date header
    received_at: float  # this machine's clock when it came
    response: httpx.Response


@dataclass
class Target:
    """One configured upstream: how to reach it, what is configured, what was found."""

    upstream: str  # "anythingllm" | "librechat"
    product: str  # "AnythingLLM" | "LibreChat"
    prefix: str  # "ANYTHINGLLM" | "LIBRECHAT": the variables' prefix
    flavour: ApiFlavour
    base_url: httpx.URL
    timeout_s: float
    default_port: int
    client: httpx.AsyncClient
    api: JsonApi  # over `client`, without credentials: for probes
    secrets: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    first: Reply | None = None  # the answer to the first probe

    @property
    def shown_url(self) -> str:
        """The base URL without any user:password in it."""
        return str(self.base_url.copy_with(username=None, password=None)).rstrip("/")

    def passed(self, check: str, detail: str) -> None:
        self.checks.append(Check(self.upstream, check, True, detail))

    def failed(self, check: str, detail: str, fix: str) -> None:
        self.checks.append(Check(self.upstream, check, False, detail, fix))

    async def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        """Send one request; transport failures raise `UpstreamUnavailable`."""
        started = time.perf_counter()
        response = await self.api.send(method, path, **kwargs)
        return Reply(
            answer=read_answer(response, method, path),
            elapsed_ms=(time.perf_counter() - started) * 1000,
            date=date_header(response.headers.get("date")),
            received_at=time.time(),
            response=response,
        )

    def unreachable(self, exc: UpstreamUnavailable, path: str) -> None:
        """The `reachable` check's failure, with the likely cause and its fix."""
        host = self.base_url.host
        port = self.base_url.port or (443 if self.base_url.scheme == "https" else 80)
        url_var = f"{self.prefix}_BASE_URL"
        text = _chain_text(exc).lower()
        if isinstance(exc.__cause__, httpx.TimeoutException):
            self.failed(
                "reachable",
                f"{self.shown_url} gave no answer to GET {path} within {self.timeout_s:g} s "
                "(SHARED_STATE_REQUEST_TIMEOUT_S): the server hangs, or a firewall drops "
                "the packets",
                f"check that {url_var} names {self.product}'s host and port and that "
                f"{self.product} is not overloaded",
            )
        elif "refused" in text:
            self.failed(
                "reachable",
                f"connection refused: nothing listens on {host}:{port} — wrong port? "
                f"({self.product}'s server listens on {self.default_port} by default)",
                f"set {url_var} to the URL {self.product} listens on, e.g. "
                f"http://{host}:{self.default_port}",
            )
        elif any(
            word in text
            for word in ("name or service", "nodename", "name resolution", "getaddrinfo")
        ):
            self.failed(
                "reachable",
                f"the host name {host!r} does not resolve (DNS)",
                f"correct the host in {url_var} (in Docker Compose: the service's name)",
            )
        else:
            self.failed(
                "reachable",
                f"{self.shown_url}: {exc.reason}",
                f"check {url_var} and that {self.product} is running",
            )

    def clock_from_token(self, token: str, received_at: float, what: str) -> bool:
        """The `clock` check from a JWT the upstream has just issued; False when the
        token carries no `iat` (the caller then falls back on the `Date` header)."""
        iat = issued_at(token)
        if iat is None:
            return False
        self._clock(iat - received_at, f"the iat of the {what} it just issued")
        return True

    def clock_from_date(self, date: float | None, received_at: float) -> None:
        """The `clock` check from the `Date` header of an answer (1 s resolution)."""
        if date is None:
            self.passed("clock", "not checked: no token issued here, and no Date header")
            return
        self._clock(date - received_at, "the Date header of its answer")

    def _clock(self, skew_s: float, source: str) -> None:
        if abs(skew_s) > MAX_SKEW_S:
            self.failed(
                "clock",
                f"{self.product}'s clock is {describe_skew(skew_s)} ({source}; more than "
                f"{MAX_SKEW_S:.0f} s fails)",
                f"synchronise the clocks of this machine and {self.product}'s host (NTP): "
                "skewed clocks make tokens look expired or not yet valid",
            )
        else:
            self.passed(
                "clock",
                f"agrees with this machine's: {abs(skew_s):.0f} s apart ({source}), "
                f"within {MAX_SKEW_S:.0f} s",
            )


def _chain_text(exc: BaseException) -> str:
    """Every message in the chain of causes, joined: where the words "refused" or "name
    or service not known" are, depends on the transport."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 10:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return " | ".join(parts)


async def identify(
    target: Target, probes: Mapping[ApiFlavour, tuple[str, Recogniser]]
) -> Answer | None:
    """The shared checks: `reachable`, `json`, `flavour`. Returns the configured
    flavour's probe answer when all three passed (the upstream-specific checks go on
    from there), else None."""
    path, recognise = probes[target.flavour]
    try:
        target.first = await target.request("GET", path)
    except UpstreamUnavailable as exc:
        target.unreachable(exc, path)
        return None
    answer = target.first.answer
    target.passed("reachable", f"{target.shown_url} answered in {target.first.elapsed_ms:.0f} ms")
    other = OTHER[target.flavour]
    other_path, other_recognise = probes[other]
    try:
        other_answer: Answer | None = (await target.request("GET", other_path)).answer
    except UpstreamError:
        other_answer = None
    if answer.kind != "json" and (other_answer is None or other_answer.kind != "json"):
        _not_json(target, answer)
        return None
    shown = answer if answer.kind == "json" else other_answer
    assert shown is not None
    target.passed("json", f"answers JSON ({shown.describe()})")
    variable = f"{target.prefix}_API"
    if recognise(answer):
        target.passed(
            "flavour",
            f"the {target.flavour} API answers (GET {path} → HTTP {answer.status}), "
            f"as {variable}={target.flavour} says",
        )
        return answer
    if other_answer is not None and other_recognise(other_answer):
        target.failed(
            "flavour",
            f"the {other} API answers (GET {other_path} → HTTP {other_answer.status}), not "
            f"the {target.flavour} one configured ({answer.describe()})",
            f"set {variable}={other}" + _flavour_extra(target, other),
        )
        return None
    target.failed(
        "flavour",
        f"neither API answers: {answer.describe()}; "
        + (other_answer.describe() if other_answer else f"GET {other_path} failed")
        + _whose(target, answer, other_answer),
        f"set {target.prefix}_BASE_URL to {target.product}'s own server (its API, port "
        f"{target.default_port} by default)",
    )
    return None


def _flavour_extra(target: Target, flavour: ApiFlavour) -> str:
    if target.upstream != "librechat":
        return ""
    if flavour == "bizzy":
        return " and LIBRECHAT_TOKEN (the bizzy API takes a bearer token)"
    return " and LIBRECHAT_EMAIL/LIBRECHAT_PASSWORD (a service account without 2FA)"


def _whose(target: Target, *answers: Answer | None) -> str:
    """A guess at what answered instead, from fixed texts the other product answers."""
    for answer in answers:
        if answer is None:
            continue
        if target.upstream == "anythingllm" and answer.message == "Endpoint not found":
            return " — this looks like LibreChat, not AnythingLLM"
        if target.upstream == "librechat" and answer.message == "No valid api key found.":
            return " — this looks like AnythingLLM, not LibreChat"
    return ""


def _not_json(target: Target, answer: Answer) -> None:
    url_var = f"{target.prefix}_BASE_URL"
    seen = answer.describe()
    if answer.looks_like_login():
        target.failed(
            "json",
            f"{seen}: a login page — an authenticating reverse proxy stands in front of "
            f"{target.product}",
            f"set {url_var} to {target.product}'s server itself, behind the proxy "
            f"(e.g. http://<{target.upstream}-host>:{target.default_port}), or let the "
            "sidecar's address through the proxy",
        )
        return
    title = (answer.title or "").lower()
    for product in ("AnythingLLM", "LibreChat"):
        if product.lower() in title:
            which = (
                f"{product}'s web frontend"
                if product == target.product
                else f"{product}'s web frontend, not {target.product}"
            )
            target.failed(
                "json",
                f"{seen}: this looks like {which}, not its API",
                f"set {url_var} to {target.product}'s API server (port "
                f"{target.default_port} by default), not a server of its web pages",
            )
            return
    target.failed(
        "json",
        f"{seen}: a web page, not {target.product}'s API",
        f"set {url_var} to {target.product}'s API server (port {target.default_port} by default)",
    )
