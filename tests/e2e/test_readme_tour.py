"""The README's curl tour is true: its `$ curl` commands, run in order against the demo
(the service and the native simulators on loopback, with the demo's settings), print what
the README shows, `…` standing for "anything (more)" and times normalised.

This test, not the README, is the source of truth. When the service's answers change,
re-capture them into the README (keeping its shortenings) with

    .venv/bin/python -m tests.e2e.test_readme_tour --update

which rewrites README.md in place; review the diff and commit it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state import Settings
from shared_state.cli import DEMO_SYNC_INTERVAL_S
from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
)
from shared_state.simulator.servers import simulator_credentials
from tests.e2e.conftest import Service, run_service

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR_HEADING = "## The API, by curl"
ANY = "…"
_SETTING_PREFIXES = ("ANYTHINGLLM_", "LIBRECHAT_", "SHARED_STATE_", "STATE_SYNC_")
# Values that differ from run to run: compared by kind, not by value.
VOLATILE_NUMBERS = frozenset({"durationMs", "uptimeS"})
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


# --- reading the README ---------------------------------------------------------------


@dataclass
class Step:
    """One `$ curl` line of the tour and the output the README shows for it."""

    command: str
    expected: list[str]
    line: int  # 1-based README line of the command
    output_lines: tuple[int, int] = (0, 0)  # [start, end) 0-based README lines of the output


@dataclass
class Tour:
    steps: list[Step] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)


def read_tour(lines: list[str]) -> Tour:
    """The tour's steps: every `console` block of the tour section, in order."""
    tour = Tour()
    start = lines.index(TOUR_HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    in_block = False
    step: Step | None = None
    for number in range(start, end):
        text = lines[number]
        if text.strip() == "```console":
            in_block = True
            continue
        if not in_block:
            continue
        if text.strip() == "```" or text.startswith("$ "):
            if step is not None:
                step.output_lines = (step.output_lines[0], number)
                tour.steps.append(step)
                step = None
            if text.strip() == "```":
                in_block = False
                continue
            command = text[2:]
            assignment = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\S+)", command.strip())
            if assignment:
                tour.variables[assignment.group(1)] = assignment.group(2)
            else:
                step = Step(command=command, expected=[], line=number + 1)
                step.output_lines = (number + 1, number + 1)
            continue
        if step is not None:
            step.expected.append(text)
    assert tour.steps, f"no `$ curl` lines under {TOUR_HEADING!r} in README.md"
    return tour


@dataclass(frozen=True)
class CurlRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None


def parse_curl(command: str, variables: dict[str, str]) -> CurlRequest:
    """The request a README `curl` line sends (the options the tour uses, nothing more)."""
    for name, value in variables.items():
        command = re.sub(rf"\${name}\b", value, command)
    words = shlex.split(command, comments=True)
    assert words[0] == "curl", f"the tour runs only curl, not {words[0]!r}"
    method: str | None = None
    url: str | None = None
    body: str | None = None
    headers: dict[str, str] = {}
    options = iter(words[1:])
    for word in options:
        if word == "-s":
            continue
        if word == "-X":
            method = next(options)
        elif word == "-H":
            name, _, value = next(options).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(options)
        elif word.startswith("-"):
            raise AssertionError(f"the tour uses a curl option this test does not know: {word}")
        else:
            url = word
    assert url is not None, f"no URL in {command!r}"
    return CurlRequest(method or ("POST" if body is not None else "GET"), url, headers, body)


# --- comparing outputs ----------------------------------------------------------------


def parse_expected(text: str) -> Any:
    """The README's JSON with `…` made JSON: an object's `…` becomes the key `"…"`, an
    array's or a value's `…` the string `"…"`."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            stack.pop()
        elif char == ANY:
            previous = "".join(out).rstrip()[-1:]
            is_key = stack and stack[-1] == "{" and previous in {",", "{"}
            out.append(f'"{ANY}":"{ANY}"' if is_key else f'"{ANY}"')
            continue
        out.append(char)
    return json.loads("".join(out))


def _pattern(shortened: str) -> re.Pattern[str]:
    """A string with `…` in it: `…` stands for any text."""
    return re.compile(".*".join(re.escape(part) for part in shortened.split(ANY)), re.DOTALL)


def assert_matches(expected: Any, actual: Any, where: str = "$") -> None:
    """`actual` is what `expected` (from `parse_expected`) describes."""
    if expected == ANY:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        keys = [key for key in expected if key != ANY]
        missing = [key for key in keys if key not in actual]
        assert not missing, f"{where}: missing {missing}"
        if ANY not in expected:
            extra = [key for key in actual if key not in expected]
            assert not extra, f"{where}: not in the README: {extra}"
        for key in keys:
            if key in VOLATILE_NUMBERS:
                assert isinstance(actual[key], int | float), f"{where}.{key}: {actual[key]!r}"
            else:
                assert_matches(expected[key], actual[key], f"{where}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected an array, got {actual!r}"
        is_open = bool(expected) and expected[-1] == ANY
        items = expected[:-1] if is_open else expected
        if is_open:
            assert len(actual) >= len(items), f"{where}: {len(actual)} items, want >= {len(items)}"
        else:
            assert len(actual) == len(items), f"{where}: {len(actual)} items, want {len(items)}"
        for index, (want, got) in enumerate(zip(items, actual, strict=False)):
            assert_matches(want, got, f"{where}[{index}]")
        return
    if isinstance(expected, str) and ANY in expected:
        assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"
        assert _pattern(expected).fullmatch(actual), f"{where}: {actual!r} is not {expected!r}"
        return
    if isinstance(expected, str) and TIMESTAMP.fullmatch(expected):
        assert isinstance(actual, str), f"{where}: expected a time, got {actual!r}"
        assert TIMESTAMP.fullmatch(actual), f"{where}: expected a time, got {actual!r}"
        return
    assert type(expected) is type(actual) or {type(expected), type(actual)} <= {int, float}, (
        f"{where}: README {expected!r}, actual {actual!r}"
    )
    assert expected == actual, f"{where}: README {expected!r}, actual {actual!r}"


def assert_output_matches(step: Step, actual: str) -> None:
    expected = "\n".join(step.expected).strip()
    where = f"README.md line {step.line}: {step.command}"
    if not expected or not expected.startswith(("{", "[")):
        assert actual.strip() == expected, f"{where}\nREADME: {expected}\nactual: {actual}"
        return
    try:
        document = json.loads(actual)
    except ValueError as exc:
        raise AssertionError(f"{where}: not JSON: {actual}") from exc
    try:
        assert_matches(parse_expected(expected), document)
    except AssertionError as exc:
        raise AssertionError(f"{where}\n{exc}\nactual: {actual}") from None


def shorten(expected: Any, actual: Any, key: str | None = None) -> Any:
    """`actual`, shortened where the README's `expected` shortens (for `--update`); times,
    durations and uptimes keep the README's values, so a re-capture changes only what
    really changed."""
    if expected == ANY:
        return ANY
    if key in VOLATILE_NUMBERS and isinstance(expected, int | float):
        return expected
    if isinstance(expected, str) and isinstance(actual, str):
        if TIMESTAMP.fullmatch(expected) and TIMESTAMP.fullmatch(actual):
            return expected
        if ANY in expected and _pattern(expected).fullmatch(actual):
            return expected  # a string the README shortens on purpose (it varies)
    if isinstance(expected, dict) and isinstance(actual, dict):
        if ANY in expected:
            return {
                name: ANY if name == ANY else shorten(expected[name], actual[name], name)
                for name in expected
                if name == ANY or name in actual
            }
        return {name: shorten(expected.get(name), value, name) for name, value in actual.items()}
    if isinstance(expected, list) and isinstance(actual, list):
        is_open = bool(expected) and expected[-1] == ANY
        items = expected[:-1] if is_open else expected
        kept = [shorten(want, got) for want, got in zip(items, actual, strict=False)]
        if is_open:
            return [*kept, ANY]
        return kept + actual[len(items) :]
    return actual


def render(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace(f'"{ANY}":"{ANY}"', ANY).replace(f'"{ANY}"', ANY)


def recaptured(step: Step, actual: str) -> list[str]:
    """The README lines that show `actual` the way the README showed the old output."""
    expected = "\n".join(step.expected).strip()
    if ANY not in expected or not expected.startswith(("{", "[")):
        return [actual] if actual else []
    return [render(shorten(parse_expected(expected), json.loads(actual)))]


# --- running the tour -----------------------------------------------------------------


@asynccontextmanager
async def demo() -> AsyncIterator[tuple[Service, dict[str, str]]]:
    """What `make demo` runs, on free ports: yields the service and the README's
    `host:port`s mapped to the real ones."""
    async with SimulatorServers(flavour="native") as sims:
        settings = Settings(
            _env_file=None,
            ANYTHINGLLM_BASE_URL=sims.anythingllm_url,
            ANYTHINGLLM_API_KEY=SIM_ANYTHINGLLM_API_KEY,
            ANYTHINGLLM_USERNAME=SIM_ANYTHINGLLM_USERNAME,
            ANYTHINGLLM_PASSWORD=SIM_ANYTHINGLLM_PASSWORD,
            LIBRECHAT_BASE_URL=sims.librechat_url,
            LIBRECHAT_EMAIL=SIM_LIBRECHAT_EMAIL,
            LIBRECHAT_PASSWORD=SIM_LIBRECHAT_PASSWORD,
            SHARED_STATE_SYNC_INTERVAL_S=DEMO_SYNC_INTERVAL_S,
            SHARED_STATE_PROPAGATE="llm",  # as the demo does
            SHARED_STATE_CONFLICT_POLICY="manual",
        )
        async with run_service(settings) as service:
            await service.runtime.synchronizer.sync()  # joins the start-up sync
            hosts = {
                "http://127.0.0.1:8080": service.url,
                "http://127.0.0.1:3001": sims.anythingllm_url,
                "http://127.0.0.1:3080": sims.librechat_url,
            }
            yield service, hosts


async def run_tour(tour: Tour) -> list[str]:
    """Each step's output, as `curl -s` prints it (the body only)."""
    outputs: list[str] = []
    async with demo() as (_, hosts), httpx.AsyncClient(timeout=30) as client:
        for step in tour.steps:
            request = parse_curl(step.command, tour.variables)
            url = request.url
            for readme_host, real_host in hosts.items():
                if url.startswith(readme_host):
                    url = real_host + url[len(readme_host) :]
            assert url != request.url, f"README.md line {step.line}: unknown host in {url}"
            response = await client.request(
                request.method,
                url,
                headers=request.headers,
                content=None if request.body is None else request.body.encode(),
            )
            outputs.append(response.text)
    return outputs


def _tour() -> tuple[list[str], Tour]:
    lines = README.read_text(encoding="utf-8").splitlines()
    return lines, read_tour(lines)


async def test_readme_curl_tour_prints_what_the_readme_shows() -> None:
    """Every `$ curl` of the tour, in order, answers what the README says it answers."""
    _, tour = _tour()
    outputs = await run_tour(tour)
    for step, actual in zip(tour.steps, outputs, strict=True):
        assert_output_matches(step, actual)


async def test_readme_tour_ends_with_the_simulators_healthy() -> None:
    """The tour's last commands clear the faults it set: both simulators end at `ok`."""
    _, tour = _tour()
    faults: dict[str, dict[str, str]] = {}
    for step in tour.steps:
        request = parse_curl(step.command, tour.variables)
        if request.url.endswith("/_sim/fault") and request.method == "PUT":
            faults.setdefault(request.url, {}).update(json.loads(request.body or "{}"))
    assert faults, "the tour shows no failure"
    for url, fault in faults.items():
        assert set(fault.values()) == {"ok"}, f"the tour leaves {url} at {fault}"


def test_readme_tells_the_simulators_credentials() -> None:
    """The quick start's environment block holds exactly the credentials the simulators
    accept (what `shared-state simulate` prints)."""
    text = README.read_text(encoding="utf-8")
    exported = dict(re.findall(r"^export ([A-Z_]+)=(\S+)$", text, flags=re.MULTILINE))
    accepted = dict(pair.split("=", 1) for pair in simulator_credentials("native").split())
    assert {name: exported.get(name) for name in accepted} == accepted
    assert exported["ANYTHINGLLM_BASE_URL"] == "http://127.0.0.1:3001"
    assert exported["LIBRECHAT_BASE_URL"] == "http://127.0.0.1:3080"


async def test_simulate_prints_the_credentials_the_readme_tells() -> None:
    """`shared-state simulate` says which credentials its upstreams accept: the README's."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "shared_state", "simulate", "--anythingllm-port", "0", "--librechat-port", "0"),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(60):
            while b"they accept:" not in (line := await process.stderr.readline()):
                assert line, "simulate stopped without naming its credentials"
    finally:
        process.terminate()
        await process.wait()
    printed = dict(pair.split("=", 1) for pair in line.decode().split("they accept:")[1].split())
    text = README.read_text(encoding="utf-8")
    exported = dict(re.findall(r"^export ([A-Z_]+)=(\S+)$", text, flags=re.MULTILINE))
    assert printed == {name: exported[name] for name in printed}
    assert process.returncode == 0


async def test_readme_sync_once_block_works_against_the_simulator(tmp_path: Path) -> None:
    """The quick start's environment block, pasted as it is (only the ports are the test's
    own), lets `shared-state sync --once` read both simulated upstreams."""
    text = README.read_text(encoding="utf-8")
    exported = dict(re.findall(r"^export ([A-Z_]+)=(\S+)$", text, flags=re.MULTILINE))
    async with SimulatorServers(flavour="native") as sims:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)},
            **exported,
            "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
            "LIBRECHAT_BASE_URL": sims.librechat_url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shared_state",
            "sync",
            "--once",
            cwd=tmp_path,  # no .env there
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    state = json.loads(stdout)
    assert {source["status"] for source in state["sources"].values()} == {"ok"}
    assert state["workspaces"]
    assert state["conversations"]


def test_expected_output_parser_reads_the_readme_shortenings() -> None:
    """`…` means more keys in an object, more items in an array, any value after `:`, any
    text inside a string."""
    parsed = parse_expected('{"a":1,…,"b":[{"c":…},…],"d":"…","e":"GET /… failed"}')
    assert parsed == {"a": 1, ANY: ANY, "b": [{"c": ANY}, ANY], "d": ANY, "e": "GET /… failed"}
    right = {"a": 1, "x": 2, "b": [{"c": 3}, {"c": 4}], "d": "text", "e": "GET /x failed"}
    assert_matches(parsed, right)
    for wrong in (
        {"a": 2, "b": [{"c": 3}], "d": "", "e": "GET / failed"},
        {"a": 1, "b": [], "d": "", "e": "GET / failed"},
        {"a": 1, "b": [{"c": 3}], "d": "", "e": "POST / failed"},
    ):
        with pytest.raises(AssertionError):
            assert_matches(parsed, wrong)
    assert render(shorten(parsed, right)) == '{"a":1,…,"b":[{"c":…},…],"d":…,"e":"GET /… failed"}'


def _update() -> int:
    """Rewrite the README's tour outputs with the real ones."""
    lines, tour = _tour()
    outputs = asyncio.run(run_tour(tour))
    for step, actual in reversed(list(zip(tour.steps, outputs, strict=True))):
        start, end = step.output_lines
        lines[start:end] = recaptured(step, actual)
    README.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"re-captured {len(tour.steps)} outputs into {README}", file=sys.stderr)
    return 0


def _iter_steps() -> Iterator[tuple[Step, str]]:  # pragma: no cover - a debugging aid
    _, tour = _tour()
    yield from zip(tour.steps, asyncio.run(run_tour(tour)), strict=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite README.md's outputs")
    if parser.parse_args().update:
        sys.exit(_update())
    for step, actual in _iter_steps():
        print(f"$ {step.command}\n{actual}")
