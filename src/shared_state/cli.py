"""The `shared-state` command: serve, demo, sync --once, simulate, doctor (get and watch:
cli_client).

Logs go to stderr; only `sync --once` (one JSON document) and `doctor` (its report)
write to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import uvicorn
from pydantic import ValidationError

from shared_state import cli_client, embedded, serving
from shared_state.config import Settings, describe_invalid_settings
from shared_state.logs import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared_state.service.runtime import Runtime

log = logging.getLogger("shared_state")

DEMO_ANYTHINGLLM_PORT = 3001
DEMO_LIBRECHAT_PORT = 3080
DEMO_SYNC_INTERVAL_S = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"shared-state: {describe_invalid_settings(exc)}", file=sys.stderr)
        return 2
    if settings.log_format != "text":
        configure_logging(args.verbose, log_format=settings.log_format)
    try:
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "demo":
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                return runner.run(_demo(settings, args))
        if args.command == "sync":
            return asyncio.run(_sync_once(settings))
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "doctor":
            return asyncio.run(_doctor(settings, as_json=args.json))
        if args.command in cli_client.COMMANDS:
            return cli_client.run(args, settings)
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover  (parser.error exits)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shared-state",
        description="Keep one merged view of AnythingLLM and LibreChat state and serve it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the service (configured by env / .env)")
    serve.add_argument("--host", help="listen address (default: SHARED_STATE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: SHARED_STATE_PORT, 8080)")

    demo = commands.add_parser("demo", help="run the service against simulated upstreams")
    demo.add_argument("--port", type=int, default=8080, help="service port (default 8080)")
    demo.add_argument("--anythingllm-port", type=int, default=DEMO_ANYTHINGLLM_PORT)
    demo.add_argument("--librechat-port", type=int, default=DEMO_LIBRECHAT_PORT)

    sync = commands.add_parser("sync", help="sync once, print the merged state as JSON")
    sync.add_argument("--once", action="store_true", required=True, help="one sync, then exit")

    simulate = commands.add_parser("simulate", help="run only the simulated upstreams")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--anythingllm-port", type=int, default=DEMO_ANYTHINGLLM_PORT)
    simulate.add_argument("--librechat-port", type=int, default=DEMO_LIBRECHAT_PORT)
    simulate.add_argument(
        "--flavour", choices=["native", "bizzy"], default="native", help="API flavour"
    )

    doctor = commands.add_parser(
        "doctor",
        help="check each configured upstream and say what to fix (exit 1 if anything failed)",
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    cli_client.add_commands(commands)  # get, watch
    return parser


async def _doctor(settings: Settings, *, as_json: bool) -> int:
    """Probe the upstreams with the configuration in force: 0 all passed, 1 otherwise
    (a configuration that does not validate has already exited with 2)."""
    from shared_state.doctor import diagnose, render_json, render_text

    report = await diagnose(settings)
    sys.stdout.write(render_json(report) if as_json else render_text(report))
    return 0 if report.ok else 1


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    """Bind first (a taken port is one line, before anything is restored or synced), then
    build the app and serve until SIGTERM or Ctrl-C."""
    from shared_state.app import create_app

    host = host or settings.host
    port = settings.port if port is None else port
    try:
        sock = embedded.bind(host, port)
    except embedded.PortInUse as exc:
        return _port_in_use(exc, "--port", "serve", also="or set SHARED_STATE_PORT ")
    except OSError as exc:
        print(f"shared-state: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    with sock:
        app = create_app(_with(settings, host=host, port=port))  # its start-up checks see --host
        config = serving.service_config(app, settings)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            return runner.run(_serve_on(app, config, sock, settings))


async def _serve_on(
    app: FastAPI, config: uvicorn.Config, sock: socket.socket, settings: Settings
) -> int:
    serving.warn_on_accept_failure(asyncio.get_running_loop())
    server = embedded.EmbeddedServer(config)
    serving.freeze_start_up_objects()
    return await embedded.serve_until_stopped(
        server,
        sock,
        shutdown_timeout_s=settings.shutdown_timeout_s,
        on_stopping=lambda: _drain(app),
    )


async def _drain(app: FastAPI) -> None:
    """SIGTERM's first step, before the server stops accepting: `Runtime.drain()`."""
    runtime: Runtime | None = getattr(app.state, "shared_state", None)
    if runtime is not None:
        await runtime.drain()


def _port_in_use(exc: embedded.PortInUse, option: str, target: str, *, also: str = "") -> int:
    print(
        f"shared-state: port {exc.port} on {exc.host} is in use; "
        f'pass {option} N {also}(make {target} ARGS="{option} N")',
        file=sys.stderr,
    )
    return 1


async def _sync_once(settings: Settings) -> int:
    from shared_state.app import running

    # A debugging aid: it neither reads nor writes the snapshot file of a running service.
    settings = _with(settings, snapshot_path=None)
    async with running(settings, schedule=False, restore=False) as runtime:
        if not any(s.status != "disabled" for s in runtime.manager.state.sources.values()):
            log.warning("no upstream is configured: set ANYTHINGLLM_BASE_URL or LIBRECHAT_BASE_URL")
        report = await runtime.synchronizer.sync()
        document = json.loads(runtime.manager.render("state"))
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    failed = [name for name, source in report.sources.items() if source.status == "stale"]
    return 1 if failed else 0


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from shared_state.app import create_app
    from shared_state.simulator import (
        SIM_ANYTHINGLLM_API_KEY,
        SIM_ANYTHINGLLM_PASSWORD,
        SIM_ANYTHINGLLM_USERNAME,
        SIM_LIBRECHAT_EMAIL,
        SIM_LIBRECHAT_PASSWORD,
        SimulatorServers,
    )

    async with contextlib.AsyncExitStack() as stack:
        try:
            sims = await stack.enter_async_context(
                SimulatorServers(
                    anythingllm_port=args.anythingllm_port, librechat_port=args.librechat_port
                )
            )
        except embedded.PortInUse as exc:
            is_anythingllm = exc.port == args.anythingllm_port
            return _port_in_use(
                exc, "--anythingllm-port" if is_anythingllm else "--librechat-port", "demo"
            )
        demo_settings = _with(
            settings,
            anythingllm_base_url=sims.anythingllm_url,
            anythingllm_api_key=SIM_ANYTHINGLLM_API_KEY,
            anythingllm_username=SIM_ANYTHINGLLM_USERNAME,
            anythingllm_password=SIM_ANYTHINGLLM_PASSWORD,
            anythingllm_api="native",
            librechat_base_url=sims.librechat_url,
            librechat_email=SIM_LIBRECHAT_EMAIL,
            librechat_password=SIM_LIBRECHAT_PASSWORD,
            librechat_token=None,
            librechat_api="native",
            sync_interval_s=DEMO_SYNC_INTERVAL_S,
            # The demo keeps the LLM settings in step and lists conflicts (contract §10),
            # unless SHARED_STATE_PROPAGATE / SHARED_STATE_CONFLICT_POLICY say otherwise.
            propagate=settings.propagate or ["llm"],
            conflict_policy=settings.conflict_policy
            if "conflict_policy" in settings.model_fields_set
            else "manual",
        )
        try:
            sock = stack.enter_context(embedded.bind("127.0.0.1", args.port))
        except embedded.PortInUse as exc:
            return _port_in_use(exc, "--port", "demo")
        banner = _demo_banner(embedded.url_of(sock), sims.anythingllm_url, sims.librechat_url)
        app = create_app(demo_settings)
        server = embedded.EmbeddedServer(serving.service_config(app, demo_settings))
        serving.freeze_start_up_objects()
        return await embedded.serve_until_stopped(
            server,
            sock,
            shutdown_timeout_s=demo_settings.shutdown_timeout_s,
            on_started=lambda: print(banner, file=sys.stderr),
            on_stopping=lambda: _drain(app),
        )
    return 1  # pragma: no cover  (mypy: the stack never swallows)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvicorn's choice of event loop (uvloop when installed), for the demo's own loop."""
    return uvicorn.Config("shared_state.app:create_app").get_loop_factory()


def _with(settings: Settings, **changes: object) -> Settings:
    """A validated copy of `settings` with `changes` (field names) applied."""
    return Settings.model_validate({**settings.model_dump(), **changes})


def _demo_banner(service: str, anythingllm: str, librechat: str) -> str:
    api = f"{service}/api/shared-state"
    return f"""
shared-state demo: the sidecar against simulated AnythingLLM and LibreChat.

  Open the dashboard: {service}/

  service          {service}   (API docs: {service}/docs)
  AnythingLLM sim  {anythingllm}
  LibreChat sim    {librechat}

Try:
  curl -s {api} | python3 -m json.tool
  curl -s {api}/settings
  curl -s {api}/workspaces/engineering-docs
  curl -s -X POST {api}/llm-settings -H 'content-type: application/json' \\
       -d '{{"model": "gpt-4o-mini", "temperature": 0.2}}'
  curl -s -X POST {api}/ui-settings -H 'content-type: application/json' -d '{{"theme": "light"}}'
  curl -s {api}/status

Change the simulated upstreams and watch the sidecar pick it up (it syncs every
{DEMO_SYNC_INTERVAL_S:.0f} s; POST {api}/sync to sync now):
  curl -s -X POST {anythingllm}/_sim/workspaces -H 'content-type: application/json' \\
       -d '{{"name": "Field notes"}}'
  curl -s -X PUT {librechat}/_sim/fault -H 'content-type: application/json' \\
       -d '{{"reads": "error"}}'

Ctrl-C stops everything.
"""


def _simulate(args: argparse.Namespace) -> int:
    from shared_state.simulator.servers import run_simulators

    try:
        run_simulators(args.host, args.anythingllm_port, args.librechat_port, flavour=args.flavour)
    except embedded.PortInUse as exc:
        is_anythingllm = exc.port == args.anythingllm_port
        option = "--anythingllm-port" if is_anythingllm else "--librechat-port"
        print(
            f"shared-state: port {exc.port} on {exc.host} is in use; pass {option} N",
            file=sys.stderr,
        )
        return 1
    return 0
