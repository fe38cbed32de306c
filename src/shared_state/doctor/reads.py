"""The `read …` checks: one whole read of an upstream exactly as the sync does it (its
adapter's `fetch`), reported per section of the state."""

from __future__ import annotations

import re

from shared_state.adapters.base import Upstream
from shared_state.doctor.target import Target
from shared_state.domain.models import UpstreamSnapshot
from shared_state.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamResponseInvalid,
    UpstreamStatusError,
    UpstreamUnavailable,
)

SECTION_OF_PATH = (
    ("/api/system/refresh-user", "user"),
    ("/api/user/settings", "settings"),
    ("/api/user", "user"),
    ("/api/me", "user"),
    ("/api/v1/system", "settings"),
    ("/api/system/settings", "settings"),
    ("/api/presets", "settings"),
    ("/api/v1/workspaces", "workspaces"),
    ("/api/workspaces", "workspaces"),
    ("/api/convos", "conversations"),
    ("/api/conversations", "conversations"),
)
"""Which section of the state each read path feeds (the first match wins)."""
_PATH = re.compile(r"\b(?:GET|POST) (/\S*)")


async def read_sections(target: Target, adapter: Upstream, sections: tuple[str, ...]) -> bool:
    """Fetch once; a `read <section>` line per section. False when the read failed."""
    try:
        snapshot = await adapter.fetch()
    except UpstreamError as exc:
        section = _section_of(exc.reason)
        target.failed(f"read {section}", exc.reason, _fix(target, exc))
        return False
    for section in sections:
        target.passed(f"read {section}", _summary(snapshot, section))
    return True


def _section_of(reason: str) -> str:
    match = _PATH.search(reason)
    if match is not None:
        for prefix, section in SECTION_OF_PATH:
            if match.group(1).startswith(prefix):
                return section
    return "state"


def _summary(snapshot: UpstreamSnapshot, section: str) -> str:
    if section == "user":
        user = snapshot.user
        if user is None:
            return "no user here (single-user mode, or no login configured): the other side's"
        return f"user {user.get('username') or user.get('email')!r}, role {user.get('role')!r}"
    if section == "settings":
        llm = snapshot.llm
        parts = [f"LLM {llm.provider or '-'} / {llm.model or '-'}"]
        if llm.temperature is not None:
            parts.append(f"temperature {llm.temperature:g}")
        if snapshot.embedding.provider is not None:
            parts.append(f"embedding {snapshot.embedding.provider}")
        if snapshot.vector_db.provider is not None:
            parts.append(f"vector DB {snapshot.vector_db.provider}")
        return ", ".join(parts)
    items = snapshot.workspaces if section == "workspaces" else snapshot.conversations
    return f"{len(items or ())} {section} read"


def _fix(target: Target, exc: UpstreamError) -> str:
    if isinstance(exc, UpstreamAuthError):
        return f"check {target.prefix}'s credentials (see the credentials check above)"
    if isinstance(exc, UpstreamUnavailable):
        return (
            f"{target.product} stopped answering in time: check its load, or raise "
            "SHARED_STATE_REQUEST_TIMEOUT_S"
        )
    if isinstance(exc, UpstreamStatusError) and exc.status == 403:
        return f"give the account {target.product} refuses this read to the rights it needs"
    if isinstance(exc, UpstreamResponseInvalid):
        return (
            f"{target.product} answered in a form the sidecar does not know: check that "
            f"it is a supported version and {target.prefix}_API is right"
        )
    return f"look at {target.product}'s own log for the failing request"
