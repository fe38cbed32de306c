"""Client benchmark: what the JS client and the dashboard add on top of the event stream.

1. Events applied per second by the JS client: `node clients/js/bench/events.mjs` (the
   client's own benchmark), its figures printed as they come.
2. Change to display: `shared-state demo` runs in its own process (the simulated
   upstreams and the service, as a user runs it); this process makes a change in the
   simulated AnythingLLM (a new workspace), asks the service to sync, and times how long
   until (a) a plain Python SSE reader (httpx streaming `/api/shared-state/events`)
   has the `changed` event, the baseline, and (b) the dashboard in headless Chromium
   shows the workspace (a MutationObserver in the page stamps the moment it is in the
   DOM). Both start from the same instant and include the simulator write and the sync;
   the browser's clock is set against this process's by a round trip before the runs.

It prints figures and asserts nothing. `BENCH_CHANGES` sets the number of changes (20).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
EVENTS_BENCH = ROOT / "clients" / "js" / "bench" / "events.mjs"
CHANGES = int(os.environ.get("BENCH_CHANGES", "20"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Installed in the page before each change: resolves with the (page-clock) time at which
# the named workspace is in the list.
WATCH_FOR = """(name) => {
  window.__seen = window.__seen || {};
  const list = document.getElementById("workspaces");
  window.__seen[name] = new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (list.textContent.includes(name)) {
        observer.disconnect();
        resolve(performance.timeOrigin + performance.now());
      }
    });
    observer.observe(list, { childList: true, subtree: true, characterData: true });
  });
}"""


def run_events_bench() -> None:
    print("JS client: events applied per second (node clients/js/bench/events.mjs)")
    node = shutil.which("node")
    if node is None or not EVENTS_BENCH.is_file():
        print(f"  skipped: {'node' if node is None else EVENTS_BENCH} not found")
        return
    result = subprocess.run(  # noqa: S603 (our own script, by absolute path)
        [node, str(EVENTS_BENCH)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():
        print(f"  {line}")
    if result.returncode != 0:
        print(f"  failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def demo_process() -> AsyncIterator[tuple[str, str]]:
    """`shared-state demo` on free ports, once ready: (service URL, AnythingLLM sim URL)."""
    port, allm, lc = _free_port(), _free_port(), _free_port()
    command = [sys.executable, "-m", "shared_state", "demo", "--port", str(port)]
    command += ["--anythingllm-port", str(allm), "--librechat-port", str(lc)]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    service = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(f"{service}/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)  # another process: only HTTP can tell
        yield service, f"http://127.0.0.1:{allm}"
    finally:
        process.terminate()
        await process.wait()


async def read_events(
    service: str, arrivals: dict[str, asyncio.Future[float]], connected: asyncio.Event
) -> None:
    """The baseline: follow the event stream and stamp each workspace added; `connected`
    is set once its first event (the snapshot) is in."""
    url = f"{service}/api/shared-state/events"
    async with (
        httpx.AsyncClient(timeout=None) as client,  # noqa: S113 (an endless stream)
        client.stream("GET", url, params={"sections": "workspaces"}) as response,
    ):
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            now = time.time() * 1000
            event = json.loads(line[6:])
            connected.set()
            if event.get("type") != "changed":
                continue
            for item in event["changes"].get("workspaces", {}).get("added", []):
                future = arrivals.get(str(item.get("name")))
                if future is not None and not future.done():
                    future.set_result(now)


async def page_clock_offset_ms(page: Page) -> float:
    """Page time minus this process's wall time, from the tightest of a few round trips."""
    best: tuple[float, float] | None = None
    for _ in range(15):
        before = time.time() * 1000
        page_now = await page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        rtt = after - before
        if best is None or rtt < best[0]:
            best = (rtt, float(page_now) - (before + after) / 2)
    assert best is not None
    return best[1]


def _figure(label: str, values: list[float]) -> str:
    return (
        f"  {label:<28} median {statistics.median(values):7.1f} ms "
        f"(min {min(values):.1f} to {max(values):.1f})"
    )


async def run_display_bench() -> None:
    print(
        f"Change to display: {CHANGES} changes (a workspace created in the simulated "
        "AnythingLLM, then POST /sync)"
    )
    chromium = shutil.which("chromium")
    if chromium is None:
        print("  skipped: no `chromium` found (Debian: apt-get install chromium)")
        return
    async with demo_process() as (service, anythingllm), async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        page = await browser.new_page()
        await page.goto(f"{service}/")
        await page.wait_for_selector('#connection[data-connection="live"]')
        offset_ms = await page_clock_offset_ms(page)
        arrivals: dict[str, asyncio.Future[float]] = {}
        connected = asyncio.Event()
        reader = asyncio.create_task(read_events(service, arrivals, connected))
        await asyncio.wait_for(connected.wait(), 30)
        loop = asyncio.get_running_loop()
        reader_ms: list[float] = []
        dashboard_ms: list[float] = []
        run = os.getpid()
        async with httpx.AsyncClient() as client:
            for number in range(CHANGES + 1):
                name = f"bench-{run}-{number}"
                arrivals[name] = loop.create_future()
                await page.evaluate(WATCH_FOR, name)
                started = time.time() * 1000
                await client.post(f"{anythingllm}/_sim/workspaces", json={"name": name})
                await client.post(f"{service}/api/shared-state/sync")
                seen_by_reader = await asyncio.wait_for(arrivals[name], 30)
                shown = await page.evaluate("(name) => window.__seen[name]", name)
                if number == 0:
                    continue  # warm-up
                reader_ms.append(seen_by_reader - started)
                dashboard_ms.append(float(shown) - offset_ms - started)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await browser.close()
    print(_figure("Python SSE reader (httpx)", reader_ms))
    print(_figure("dashboard in Chromium", dashboard_ms))
    ratio = statistics.median(dashboard_ms) / statistics.median(reader_ms)
    gaps = [shown - read for shown, read in zip(dashboard_ms, reader_ms, strict=True)]
    print(f"  dashboard / reader (medians): {ratio:.2f}x")
    print(
        f"  dashboard - reader, per change: median {statistics.median(gaps):+.1f} ms "
        f"(min {min(gaps):+.1f} to {max(gaps):+.1f})"
    )


def main() -> None:
    run_events_bench()
    asyncio.run(run_display_bench())


if __name__ == "__main__":
    main()
