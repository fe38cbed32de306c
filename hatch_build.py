"""Build hook (hatchling's `custom` hook, configured in pyproject.toml): copies the JS
client's files into a wheel as `shared_state/static/js/`, where the served
`/api/shared-state/client.js` and `react.js` are looked up.

Only into a real wheel: hatchling's `force-include` would also copy them into an editable
install (a frozen copy, and a failed install while a file does not exist yet); an
editable install reads them from `clients/js/` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]  # untyped generic
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        files: dict[str, str] = self.config["wheel-only-files"]
        for source, target in files.items():
            path = Path(self.root) / source
            if not path.is_file():
                raise FileNotFoundError(f"{source} is missing: the wheel must carry it")
            build_data["force_include"][str(path)] = target
