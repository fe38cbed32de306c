"""What a hung test waits for: every task of the running event loop with its stack.

`tests/conftest.py` prints it on SIGUSR1 (`kill -USR1 <pytest's pid>`); the service
fixtures put it in their failure when a service does not stop in time. pytest-timeout
(`timeout` in pyproject.toml) is the backstop that ends any test that hangs.
"""

from __future__ import annotations

import asyncio
import io


def tasks_report(limit: int = 25) -> str:
    """The running loop's tasks, each with the stack it waits in (empty: no loop)."""
    try:
        tasks = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:
        return ""
    out = io.StringIO()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        print(f"--- {task.get_name()}: {task.get_coro()!r}", file=out)
        task.print_stack(limit=limit, file=out)
    return out.getvalue()
