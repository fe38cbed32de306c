"""`shared-state doctor` against the simulators on loopback, both API flavours: a
healthy configuration passes every check, and each misconfiguration fails the check
that names it, with its fix."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from shared_state.simulator import (
    SECRET_CANARY,
    Flavour,
    SimulatorServers,
    World,
)
from shared_state.simulator.misconfig import (
    ServedApp,
    create_login_proxy_app,
    create_web_frontend_app,
)
from tests.doctor.conftest import Doctor, free_port, healthy_env


async def test_a_healthy_configuration_passes_every_check(doctor: Doctor, flavour: Flavour) -> None:
    """Every check passes and the exit code is 0; each upstream gets its checks."""
    async with SimulatorServers(flavour=flavour) as sims:
        run = await doctor(healthy_env(sims))
    assert run.code == 0, run.out
    rows = run.rows()
    assert all(ok for ok, *_ in rows)
    for upstream in ("anythingllm", "librechat"):
        checks = [check for _, name, check, _ in rows if name == upstream]
        assert checks[:4] == ["reachable", "json", "flavour", "credentials"]
        assert {"version", "read settings", "write access", "clock"} <= set(checks)
    assert f"the {flavour} API answers" in run.line("librechat", "flavour")


async def test_native_librechat_is_logged_in_to_once(doctor: Doctor) -> None:
    """LibreChat allows 7 logins per 5 minutes: one doctor run logs in once, and reads
    every section with that one token."""
    world = World.seed()
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims))
    assert run.code == 0, run.out
    assert world.librechat.stats.logins == 1
    assert world.librechat.stats.refreshes == 0
    assert "37 conversations read" in run.line("librechat", "read conversations")


async def test_a_disabled_upstream_is_one_line(doctor: Doctor) -> None:
    """With no LIBRECHAT_BASE_URL, LibreChat is one passed `disabled` line."""
    async with SimulatorServers(flavour="native") as sims:
        env = healthy_env(sims)
        for name in ("LIBRECHAT_BASE_URL", "LIBRECHAT_EMAIL", "LIBRECHAT_PASSWORD"):
            del env[name]
        run = await doctor(env)
    assert run.code == 0, run.out
    librechat = [row for row in run.rows() if row[1] == "librechat"]
    assert librechat == [(True, "librechat", "disabled", librechat[0][3])]
    assert "LIBRECHAT_BASE_URL is not set" in librechat[0][3]


async def test_no_upstream_configured_fails_with_the_variables_to_set(doctor: Doctor) -> None:
    """With neither base URL (a .env not found, say), the doctor does not call that
    healthy: one failed check names the variables to set, and the exit code is 1."""
    run = await doctor({})
    assert run.code == 1, run.out
    failed = [row for row in run.rows() if not row[0]]
    assert [(name, check) for _, name, check, _ in failed] == [("service", "configured")]
    assert "ANYTHINGLLM_BASE_URL" in run.out
    assert "LIBRECHAT_BASE_URL" in run.out


async def test_the_wrong_port_is_named(doctor: Doctor, flavour: Flavour) -> None:
    """Nothing listens on the port: `reachable` fails, says so, and asks about the port."""
    async with SimulatorServers(flavour=flavour) as sims:
        env = healthy_env(sims) | {"ANYTHINGLLM_BASE_URL": f"http://127.0.0.1:{free_port()}"}
        run = await doctor(env)
    assert run.code == 1
    assert run.failed("anythingllm") == ["reachable"]
    detail = run.line("anythingllm", "reachable")
    assert "connection refused" in detail
    assert "wrong port?" in detail
    assert "fix: set ANYTHINGLLM_BASE_URL" in detail
    assert run.failed("librechat") == []


async def test_a_web_frontend_is_recognised(doctor: Doctor, flavour: Flavour) -> None:
    """A base URL at a server of the web pages (HTML at every path): `json` fails,
    naming the product's web frontend and the variable to change."""
    async with (
        SimulatorServers(flavour=flavour) as sims,
        ServedApp(create_web_frontend_app("anythingllm")) as allm_web,
        ServedApp(create_web_frontend_app("librechat")) as lc_web,
    ):
        env = healthy_env(sims) | {
            "ANYTHINGLLM_BASE_URL": allm_web.url,
            "LIBRECHAT_BASE_URL": lc_web.url,
        }
        run = await doctor(env)
    assert run.code == 1
    for upstream, product, variable in (
        ("anythingllm", "AnythingLLM", "ANYTHINGLLM_BASE_URL"),
        ("librechat", "LibreChat", "LIBRECHAT_BASE_URL"),
    ):
        assert run.failed(upstream) == ["json"]
        detail = run.line(upstream, "json")
        assert f"looks like {product}'s web frontend" in detail
        assert f"fix: set {variable} to {product}'s API server" in detail


async def test_a_login_proxy_is_recognised(doctor: Doctor, flavour: Flavour) -> None:
    """A reverse proxy's login: a 302 to /login, or its login form (HTML with a
    password field): `json` fails and says a login proxy stands in front."""
    async with (
        SimulatorServers(flavour=flavour) as sims,
        ServedApp(create_login_proxy_app("redirect")) as redirecting,
        ServedApp(create_login_proxy_app("form")) as form,
    ):
        env = healthy_env(sims) | {
            "ANYTHINGLLM_BASE_URL": redirecting.url,
            "LIBRECHAT_BASE_URL": form.url,
        }
        run = await doctor(env)
    assert run.code == 1
    assert run.failed("anythingllm") == ["json"]
    assert run.failed("librechat") == ["json"]
    redirect = run.line("anythingllm", "json")
    assert "HTTP 302, a redirect to /login" in redirect
    assert "authenticating reverse proxy" in redirect
    assert "fix: set ANYTHINGLLM_BASE_URL to AnythingLLM's server itself" in redirect
    page = run.line("librechat", "json")
    assert "'Sign in', with a password field" in page
    assert "fix: set LIBRECHAT_BASE_URL" in page


async def test_a_refused_anythingllm_key(doctor: Doctor, flavour: Flavour) -> None:
    """A developer API key AnythingLLM does not know: `credentials` fails, naming
    ANYTHINGLLM_API_KEY; nothing is read with it."""
    async with SimulatorServers(flavour=flavour) as sims:
        run = await doctor(healthy_env(sims) | {"ANYTHINGLLM_API_KEY": "not-the-key-at-all"})
    assert run.code == 1
    assert run.failed("anythingllm") == ["credentials"]
    detail = run.line("anythingllm", "credentials")
    assert "refused the developer API key" in detail
    assert "fix: set ANYTHINGLLM_API_KEY" in detail
    assert not [row for row in run.rows() if row[1:3] == ("anythingllm", "read settings")]


async def test_anythingllm_login_refused(doctor: Doctor) -> None:
    """A wrong ANYTHINGLLM_PASSWORD: the key passes, the login fails and names both
    variables; the user is not read, the rest is."""
    async with SimulatorServers(flavour="native") as sims:
        run = await doctor(healthy_env(sims) | {"ANYTHINGLLM_PASSWORD": "not-the-password"})
    assert run.code == 1
    assert run.failed("anythingllm") == ["credentials"]
    refused = [r[3] for r in run.rows() if r[1:3] == ("anythingllm", "credentials") and not r[0]]
    assert "refused the login of ANYTHINGLLM_USERNAME 'ada'" in refused[0]
    assert "fix: set ANYTHINGLLM_USERNAME and ANYTHINGLLM_PASSWORD" in refused[0]
    assert "5 workspaces read" in run.line("anythingllm", "read workspaces")


async def test_anythingllm_login_in_single_user_mode(doctor: Doctor) -> None:
    """A login configured against a single-user instance: the fix is to drop it."""
    world = World.seed()
    world.anythingllm.auth.multi_user = False
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims))
    assert run.code == 1
    assert run.failed("anythingllm") == ["credentials"]
    refused = [r[3] for r in run.rows() if r[1:3] == ("anythingllm", "credentials") and not r[0]]
    assert "single-user mode" in refused[0]
    assert "fix: unset ANYTHINGLLM_USERNAME and ANYTHINGLLM_PASSWORD" in refused[0]


async def test_librechat_wrong_password(doctor: Doctor) -> None:
    """A wrong LIBRECHAT_PASSWORD is told apart from the other refusals."""
    async with SimulatorServers(flavour="native") as sims:
        run = await doctor(healthy_env(sims) | {"LIBRECHAT_PASSWORD": "not-the-password"})
    assert run.code == 1
    assert run.failed("librechat") == ["credentials"]
    assert run.line("librechat", "credentials") == (
        "LibreChat refused the login (wrong password) → fix: set LIBRECHAT_PASSWORD to the "
        "service account's password"
    )


async def test_librechat_two_factor(doctor: Doctor) -> None:
    """An account with 2FA: the login asks for a code the sidecar cannot give."""
    world = World.seed()
    world.librechat.auth.two_factor = True
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims))
    assert run.code == 1
    assert run.failed("librechat") == ["credentials"]
    detail = run.line("librechat", "credentials")
    assert "two-factor authentication" in detail
    assert "fix: use a service account without 2FA" in detail


async def test_librechat_login_rate_limit(doctor: Doctor) -> None:
    """The login limit hit (429): the check says how long to wait, from the answer."""
    world = World.seed()
    world.librechat.auth.login_max = 0
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims))
    assert run.code == 1
    assert run.failed("librechat") == ["credentials"]
    detail = run.line("librechat", "credentials")
    assert "login rate limit was hit (HTTP 429" in detail
    assert "wait 300 s before the next login" in detail  # "try again after 5 minutes."
    assert world.librechat.stats.logins == 1


async def test_serves_login_budget_is_respected(doctor: Doctor, tmp_path: Path) -> None:
    """When the sidecar's own login budget (beside the snapshot file) says to back off,
    doctor does not log in to LibreChat at all, and says how long to wait."""
    snapshot = tmp_path / "state.json"
    budget = tmp_path / "state.json.librechat-logins"
    budget.write_text(json.dumps({"loginTimes": [], "backoffUntil": time.time() + 120}))
    world = World.seed()
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims) | {"SHARED_STATE_SNAPSHOT_PATH": str(snapshot)})
    assert run.code == 1
    assert run.failed("librechat") == ["credentials"]
    assert "not tried: the sidecar's login budget" in run.line("librechat", "credentials")
    assert world.librechat.stats.logins == 0


async def test_flavour_mismatch_bizzy_configured_against_native(doctor: Doctor) -> None:
    """`bizzy` configured, `native` answering: `flavour` fails, the fix names the variable."""
    async with SimulatorServers(flavour="native") as sims:
        env = healthy_env(sims) | {
            "ANYTHINGLLM_API": "bizzy",
            "LIBRECHAT_API": "bizzy",
            "LIBRECHAT_TOKEN": "some-token",
        }
        run = await doctor(env)
    assert run.code == 1
    assert run.failed("anythingllm") == ["flavour"]
    assert run.failed("librechat") == ["flavour"]
    assert "the native API answers" in run.line("anythingllm", "flavour")
    assert "fix: set ANYTHINGLLM_API=native" in run.line("anythingllm", "flavour")
    assert "fix: set LIBRECHAT_API=native" in run.line("librechat", "flavour")


async def test_flavour_mismatch_native_configured_against_bizzy(doctor: Doctor) -> None:
    """`native` configured, `bizzy` answering: the reverse fix."""
    async with SimulatorServers(flavour="bizzy") as sims:
        env = healthy_env(sims) | {
            "ANYTHINGLLM_API": "native",
            "LIBRECHAT_API": "native",
            "LIBRECHAT_EMAIL": "ada@example.com",
            "LIBRECHAT_PASSWORD": "some-password",
        }
        run = await doctor(env)
    assert run.code == 1
    assert run.failed("anythingllm") == ["flavour"]
    assert run.failed("librechat") == ["flavour"]
    assert "the bizzy API answers" in run.line("anythingllm", "flavour")
    assert "fix: set ANYTHINGLLM_API=bizzy" in run.line("anythingllm", "flavour")
    assert "fix: set LIBRECHAT_API=bizzy and LIBRECHAT_TOKEN" in run.line("librechat", "flavour")


async def test_clock_skew_against_the_tokens(doctor: Doctor) -> None:
    """Tokens issued with an `iat` 5 minutes off (ahead on one side, behind on the
    other): `clock` fails on both, saying which way."""
    world = World.seed()
    world.librechat.auth.token_clock_offset_s = 300
    world.anythingllm.auth.token_clock_offset_s = -300
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims))
    assert run.code == 1
    assert run.failed("librechat") == ["clock"]
    assert run.failed("anythingllm") == ["clock"]
    # `iat` has whole seconds: 299 or 300 s off, with a loopback round trip.
    assert re.search(
        r"\b(299|300|301) s ahead of this machine's clock", run.line("librechat", "clock")
    )
    assert re.search(
        r"\b(299|300|301) s behind this machine's clock", run.line("anythingllm", "clock")
    )
    assert "fix: synchronise the clocks" in run.line("librechat", "clock")


async def test_a_hanging_upstream_fails_after_the_request_timeout(doctor: Doctor) -> None:
    """An upstream that accepts but never answers: `reachable` fails after
    SHARED_STATE_REQUEST_TIMEOUT_S instead of hanging the doctor."""
    world = World.seed()
    world.anythingllm.faults.reads = "slow"
    world.anythingllm.faults.delay_s = 600
    async with SimulatorServers(world, flavour="native") as sims:
        run = await doctor(healthy_env(sims) | {"SHARED_STATE_REQUEST_TIMEOUT_S": "0.5"})
    assert run.code == 1
    assert run.failed("anythingllm") == ["reachable"]
    assert "no answer to GET /api/v1/auth within 0.5 s" in run.line("anythingllm", "reachable")


async def test_json_report_shape(doctor: Doctor, flavour: Flavour) -> None:
    """`--json`: one document, `ok` and the checks with exactly their five fields; a
    failure carries its fix, a pass none."""
    async with SimulatorServers(flavour=flavour) as sims:
        healthy = await doctor(healthy_env(sims), "--json")
        broken = await doctor(
            healthy_env(sims) | {"ANYTHINGLLM_API_KEY": "wrong-key-123"}, "--json"
        )
    assert healthy.code == 0
    assert broken.code == 1
    for run, ok in ((healthy, True), (broken, False)):
        document = run.json()
        assert set(document) == {"ok", "checks"}
        assert document["ok"] is ok
        for check in document["checks"]:
            assert set(check) == {"upstream", "check", "ok", "detail", "fix"}
            assert (check["fix"] is None) == check["ok"]
    failed = [c for c in broken.json()["checks"] if not c["ok"]]
    assert [(c["upstream"], c["check"]) for c in failed] == [("anythingllm", "credentials")]
    assert "ANYTHINGLLM_API_KEY" in failed[0]["fix"]


async def test_bad_configuration_exits_2(doctor: Doctor) -> None:
    """A configuration that does not validate: the usual one-line error, exit 2."""
    run = await doctor({"LIBRECHAT_EMAIL": "ada@example.com"})
    assert run.code == 2
    assert run.out == ""
    assert "invalid configuration" in run.err
    assert "LIBRECHAT_EMAIL and LIBRECHAT_PASSWORD go together" in run.err


async def test_no_secret_is_ever_printed(doctor: Doctor) -> None:
    """The canary: distinctive secrets configured, every broken case run, text and
    JSON; neither the secrets, nor any token the upstreams issued, nor the
    simulators' own secrets appear in stdout or stderr."""
    canaries = {
        "ANYTHINGLLM_API_KEY": "canary-allm-key-5e1d",
        "ANYTHINGLLM_PASSWORD": "canary-allm-password-77",
        "LIBRECHAT_PASSWORD": "canary-lc-password-9b",
        "SHARED_STATE_API_TOKEN": "canary-api-token-3c",
    }
    world = World.seed()
    world.anythingllm.auth.password = canaries["ANYTHINGLLM_PASSWORD"]
    world.librechat.auth.password = canaries["LIBRECHAT_PASSWORD"]
    outputs: list[str] = []
    async with (
        SimulatorServers(world, flavour="native") as native,
        SimulatorServers(flavour="bizzy") as bizzy,
        ServedApp(create_login_proxy_app("redirect")) as proxy,
        ServedApp(create_web_frontend_app("librechat")) as web,
    ):
        good = healthy_env(native) | {
            "ANYTHINGLLM_PASSWORD": canaries["ANYTHINGLLM_PASSWORD"],
            "LIBRECHAT_PASSWORD": canaries["LIBRECHAT_PASSWORD"],
            "SHARED_STATE_API_TOKEN": canaries["SHARED_STATE_API_TOKEN"],
        }
        cases = [
            good,
            good | {"ANYTHINGLLM_API_KEY": canaries["ANYTHINGLLM_API_KEY"]},
            good | {"ANYTHINGLLM_PASSWORD": "canary-wrong-allm-pw"},
            good | {"LIBRECHAT_PASSWORD": "canary-wrong-lc-pw"},
            good | {"ANYTHINGLLM_BASE_URL": proxy.url, "LIBRECHAT_BASE_URL": web.url},
            good
            | {
                "ANYTHINGLLM_API": "bizzy",
                "LIBRECHAT_API": "bizzy",
                "LIBRECHAT_TOKEN": "canary-lc-token-41",
            },
            healthy_env(bizzy) | {"LIBRECHAT_TOKEN": "canary-lc-token-42"},
            healthy_env(bizzy) | {"ANYTHINGLLM_API_KEY": canaries["ANYTHINGLLM_API_KEY"]},
        ]
        for args in ((), ("--json",)):
            for env in cases:
                run = await doctor(env, *args)
                outputs.append(run.out + run.err)
        world.librechat.auth.two_factor = True
        outputs.append((await doctor(good)).out)
        world.librechat.auth.two_factor = False
        world.librechat.auth.login_max = 0
        outputs.append((await doctor(good)).out)
    text = "\n".join(outputs)
    secrets = [
        *canaries.values(),
        "canary-wrong-allm-pw",
        "canary-wrong-lc-pw",
        "canary-lc-token-41",
        "canary-lc-token-42",
        SECRET_CANARY,
        "eyJ",
    ]
    for secret in secrets:
        assert secret not in text, secret
    assert text.count("✗") > 8  # the broken cases did fail
