"""The doctor's findings: one `Check` per line, a `Report` of them, and their text and
JSON renderings. Every detail and fix is redacted before it is rendered."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_MIN_SECRET_CHARS = 8  # shorter values would blank ordinary words


@dataclass(frozen=True)
class Check:
    """One thing the doctor checked on one upstream: passed or not, what it saw, and,
    when it failed, what to change (`fix`)."""

    upstream: str
    check: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Report:
    """Every check of one run, in the order they ran."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def redacted(self, secrets: Iterable[str]) -> Report:
        """The same report with every secret (and anything shaped like a JWT) blanked: a
        detail may quote an upstream's words, which may quote what it was sent."""
        values = sorted({s for s in secrets if len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True)

        def clean(text: str) -> str:
            for value in values:
                text = text.replace(value, "***")
            return _JWT.sub("<jwt>", text)

        return Report(
            tuple(
                replace(c, detail=clean(c.detail), fix=None if c.fix is None else clean(c.fix))
                for c in self.checks
            )
        )


def render_text(report: Report) -> str:
    """One line per check: `✓ anythingllm  reachable    …` or `✗ … → fix: …`."""
    width = max((len(c.check) for c in report.checks), default=0)
    lines = []
    for c in report.checks:
        line = f"{'✓' if c.ok else '✗'} {c.upstream:<11}  {c.check:<{width}}  {c.detail}"
        if c.fix:
            line += f" → fix: {c.fix}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    """`{"ok": bool, "checks": [{"upstream", "check", "ok", "detail", "fix"}]}`."""
    document = {"ok": report.ok, "checks": [asdict(c) for c in report.checks]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
