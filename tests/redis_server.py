"""A real `redis-server` for the tests: Debian's package, on a free loopback port.

`RedisServer` starts one with no persistence (no RDB, no AOF) in a temporary directory
and waits for its "Ready to accept connections" line (no polling); `stop()` and
`start()` again (on the same port) are how a test takes Redis away while serving and
brings it back empty. `find_redis_server()` says whether the package is installed; the
fixture in `tests/conftest.py` skips loudly without it, and fails under `CI=true`.
`SHARED_STATE_TESTS_REDIS_SERVER` names another executable, or `none` to run the suite
as a machine without Redis would (the Redis tests skipped, everything else passing).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType

READY_LINE = "Ready to accept connections"
START_TIMEOUT_S = 20.0
"""Generous: a loaded 2-core machine may take a while to fork and exec."""


def find_redis_server() -> str | None:
    """Debian's `redis-server` (on PATH, else its usual place), or None; or what
    `SHARED_STATE_TESTS_REDIS_SERVER` says (`none`: None)."""
    chosen = os.environ.get("SHARED_STATE_TESTS_REDIS_SERVER")
    if chosen:
        return None if chosen.lower() == "none" else chosen
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").is_file():
        found = "/usr/bin/redis-server"
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One `redis-server` process on 127.0.0.1, no persistence, its files in a temp dir."""

    def __init__(self, executable: str, port: int | None = None) -> None:
        self.executable = executable
        self.port = port if port is not None else free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="shared-state-redis-")
        self._process: subprocess.Popen[str] | None = None
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start it (empty: nothing is persisted) and return once it accepts connections."""
        if self.running:
            return
        arguments = [
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", self._dir.name),
            *("--protected-mode", "yes", "--daemonize", "no", "--loglevel", "notice"),
        ]
        process = subprocess.Popen(  # noqa: S603 - our own argument list, no shell
            [self.executable, *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._process = process
        ready = threading.Event()
        output: list[str] = []

        def watch() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line)
                if READY_LINE in line:
                    ready.set()
            ready.set()  # it exited: stop waiting (checked below)

        self._watcher = threading.Thread(target=watch, name=f"redis-{self.port}", daemon=True)
        self._watcher.start()
        if not ready.wait(START_TIMEOUT_S) or process.poll() is not None:
            self.stop()
            raise RuntimeError(
                f"redis-server on port {self.port} did not start: {''.join(output)[-2000:]}"
            )

    def stop(self) -> None:
        """Stop it now (SIGKILL: a crash, nothing saved) and wait for the exit."""
        process, self._process = self._process, None
        watcher, self._watcher = self._watcher, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=START_TIMEOUT_S)
        if watcher is not None:
            watcher.join(timeout=START_TIMEOUT_S)  # it reads to the end of the output
        if process.stdout is not None:
            process.stdout.close()

    def pause(self) -> None:
        """SIGSTOP: it keeps its connections and answers nothing (a hung Redis)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
