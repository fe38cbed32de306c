"""`shared-state get`'s output: indented JSON on a terminal, one compact line otherwise."""

from __future__ import annotations

import io
import json

import pytest

from shared_state.cli_client import print_section
from shared_state.client import SharedStateClient
from tests.clients.python.wire import BASE, SETTINGS, Recorder, json_answer, state

USER = {
    "id": 1,
    "username": "ada",
    "email": "ada@example.com",
    "name": "Ada",
    "role": "admin",
    "anythingLLM": None,
    "libreChat": None,
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("section", "body", "path"),
    [
        (None, state(user=USER), "/api/shared-state"),
        ("settings", SETTINGS, "/api/shared-state/settings"),
        ("workspaces", state()["workspaces"], "/api/shared-state/workspaces"),
        ("user", USER, "/api/shared-state/user"),
        ("user", None, "/api/shared-state/user"),
    ],
)
def test_a_pipe_gets_one_compact_line_of_the_services_json(
    section: str | None, body: object, path: str
) -> None:
    service = Recorder(json_answer(body))
    out = io.StringIO()
    with SharedStateClient(BASE, transport=service.transport) as client:
        assert print_section(client, section, out) == 0
    assert service.last.url.path == path
    assert out.getvalue().count("\n") == 1
    assert json.loads(out.getvalue()) == body
    assert ", " not in out.getvalue()
    assert ": " not in out.getvalue()


def test_a_terminal_gets_indented_json() -> None:
    service = Recorder(json_answer(SETTINGS))
    out = Terminal()
    with SharedStateClient(BASE, transport=service.transport) as client:
        print_section(client, "settings", out)
    assert out.getvalue().startswith('{\n  "llm": {\n    "provider": "openai",')
    assert json.loads(out.getvalue()) == SETTINGS
