"""`shared-state get` and `shared-state watch`: the Python client on the command line.

`get [SECTION]` prints the state (or one section, or `status`) as JSON: indented when
stdout is a terminal, one compact line otherwise (for `jq` and pipes). `watch` prints
one readable line per event until Ctrl-C, or with `--json` each event as one JSON
object per line. Both talk to `--url` (default `http://127.0.0.1:8080`) with the token
of `SHARED_STATE_API_TOKEN`; an error answer prints the service's detail on stderr and
exits 1, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Collection, Mapping
from typing import Any, TextIO

from pydantic import BaseModel

from shared_state.client import SharedStateClient, SharedStateClientError
from shared_state.client.events import ClientEvent
from shared_state.config import Settings
from shared_state.domain.events import ItemChanges
from shared_state.domain.items import ItemList
from shared_state.domain.models import SECTIONS, SourceName, SourceStatus, StateSettings, User

DEFAULT_URL = "http://127.0.0.1:8080"
COMMANDS = ("get", "watch")
GET_SECTIONS = ("user", "settings", "workspaces", "conversations", "status")
MAX_VALUE_CHARS = 60
"""A value longer than this is cut in `watch`'s lines (the JSON has it whole)."""


def add_commands(commands: Any) -> None:
    """Add `get` and `watch` to the `shared-state` parser's subcommands."""
    get = commands.add_parser("get", help="print the state, or one section, as JSON")
    get.add_argument(
        "section", nargs="?", choices=GET_SECTIONS, help="one section (default: the whole state)"
    )
    get.add_argument("--url", default=DEFAULT_URL, help=f"the service (default {DEFAULT_URL})")

    watch = commands.add_parser("watch", help="print one line per change event, until Ctrl-C")
    watch.add_argument("--url", default=DEFAULT_URL, help=f"the service (default {DEFAULT_URL})")
    watch.add_argument(
        "--sections", help=f"comma-separated sections to follow ({', '.join(SECTIONS)})"
    )
    watch.add_argument("--json", action="store_true", help="one JSON object per event and line")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `get` or `watch`; the exit code."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    try:
        client = SharedStateClient(args.url, token)
    except ValueError as exc:  # a --url that is not an http(s) URL
        print(f"shared-state: {exc}", file=sys.stderr)
        return 2
    try:
        with client:
            if args.command == "get":
                return print_section(client, args.section, sys.stdout)
            sections = _sections(args.sections)
            return print_events(client, sections, as_json=args.json, out=sys.stdout)
    except SharedStateClientError as exc:
        hint = " Is the service running there? (--url URL)" if exc.code == "network_error" else ""
        print(f"shared-state: {exc.detail}{hint}", file=sys.stderr)
        return 1


def print_section(client: SharedStateClient, section: str | None, out: TextIO) -> int:
    value: Any
    if section is None:
        value = client.get_state()
    elif section == "user":
        value = client.get_user()
    elif section == "settings":
        value = client.get_settings()
    elif section == "workspaces":
        value = client.get_workspaces()
    elif section == "conversations":
        value = client.get_conversations()
    else:
        value = client.get_status()
    document = _jsonable(value)
    if out.isatty():
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, ItemList):
        return list(value)
    return value


def _sections(given: str | None) -> list[str] | None:
    if given is None:
        return None
    return [name.strip() for name in given.split(",") if name.strip()]


def print_events(
    client: SharedStateClient, sections: list[str] | None, *, as_json: bool, out: TextIO
) -> int:
    """Print every event until Ctrl-C (exit 0) or a closed pipe (`watch | head -1`)."""
    describer = EventDescriber(sections)
    try:
        for event in client.events(sections=sections):
            line = describer.json(event) if as_json else describer.line(event)
            out.write(line + "\n")
            out.flush()
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away: exit quietly (and keep Python from complaining about
        # stdout at exit).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        return 0
    return 0  # pragma: no cover  (events() never ends by itself)


class EventDescriber:
    """`watch`'s readable lines: `v42 changed settings.llm model=gpt-4o · conversations
    +1 ~0 -0`. Remembers the settings and the sources' statuses to say what changed."""

    def __init__(self, sections: Collection[str] | None) -> None:
        self._sections = set(SECTIONS if sections is None else sections)
        self._settings: StateSettings | None = None
        self._statuses: dict[str, str] = {}

    def json(self, event: ClientEvent) -> str:
        """The event as the service sent it: one JSON object (a snapshot's state without
        the sections not followed)."""
        if event.type == "snapshot":
            left_out: set[str] = {name for name in SECTIONS if name not in self._sections}
            return event.model_dump_json(by_alias=True, exclude={"state": left_out})
        return event.model_dump_json(by_alias=True)

    def line(self, event: ClientEvent) -> str:
        """The event as one readable line."""
        if event.type == "snapshot":
            return f"v{event.version} snapshot " + " · ".join(self._snapshot_parts(event))
        parts = [self._change(section, change) for section, change in event.changes.items()]
        return f"v{event.version} changed " + " · ".join(parts)

    def _snapshot_parts(self, event: ClientEvent) -> list[str]:
        assert event.type == "snapshot"
        state = event.state
        parts = []
        if "user" in self._sections:
            parts.append(f"user={_user(state.user)}")
        if "settings" in self._sections:
            self._settings = state.settings
            llm, ui = state.settings.llm, state.settings.ui
            parts.append(f"llm {_shown(llm.provider)}/{_shown(llm.model)}")
            parts.append(f"ui {_shown(ui.theme)}/{_shown(ui.font_size)}")
        if "workspaces" in self._sections:
            parts.append(f"workspaces {len(state.workspaces)}")
        if "conversations" in self._sections:
            parts.append(f"conversations {len(state.conversations)}")
        if "sources" in self._sections:
            parts.append("sources " + self._sources(state.sources, only_changed=False))
        return parts

    def _change(self, section: str, change: Any) -> str:
        if isinstance(change, ItemChanges):
            added, updated, removed = len(change.added), len(change.updated), len(change.removed)
            return f"{section} +{added} ~{updated} -{removed}"
        if isinstance(change, StateSettings):
            return self._settings_change(change)
        if section == "user":
            return f"user={_user(change)}"
        if section == "sources":
            return "sources " + self._sources(change, only_changed=True)
        return section  # pragma: no cover  (the five sections are all above)

    def _settings_change(self, settings: StateSettings) -> str:
        old, self._settings = self._settings, settings
        groups = []
        for name, group in settings:
            before = getattr(old, name) if old is not None else None
            fields = [
                f"{type(group).model_fields[field].alias or field}={_shown(value)}"
                for field, value in group
                if before is None or getattr(before, field) != value
            ]
            if fields:
                alias = StateSettings.model_fields[name].alias or name
                groups.append(f"settings.{alias} " + " ".join(fields))
        return " · ".join(groups) or "settings"

    def _sources(self, sources: Mapping[SourceName, SourceStatus], *, only_changed: bool) -> str:
        shown = []
        for name, source in sources.items():
            if not only_changed or self._statuses.get(name) != source.status:
                shown.append(f"{name}={source.status}")
            self._statuses[name] = source.status
        return " ".join(shown) or "(none)"


def _user(user: User | None) -> str:
    if user is None:
        return "none"
    return _shown(user.username or user.email or user.id)


def _shown(value: Any) -> str:
    """A value for a terminal line: printable characters only, cut when long."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text if text and " " not in text else json.dumps(text, ensure_ascii=False)
