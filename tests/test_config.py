"""Settings: every variable of contract §3, `.env` support, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared_state.config import Settings, describe_invalid_settings

ALL_VARIABLES = {
    "ANYTHINGLLM_BASE_URL",
    "ANYTHINGLLM_API_KEY",
    "ANYTHINGLLM_API",
    "ANYTHINGLLM_USERNAME",
    "ANYTHINGLLM_PASSWORD",
    "LIBRECHAT_BASE_URL",
    "LIBRECHAT_TOKEN",
    "LIBRECHAT_EMAIL",
    "LIBRECHAT_PASSWORD",
    "LIBRECHAT_API",
    "LIBRECHAT_MAX_CONVERSATIONS",
    "LIBRECHAT_FULL_SCAN_EVERY",
    "LIBRECHAT_ENDPOINT_PROVIDERS",
    "SHARED_STATE_SYNC_INTERVAL_S",
    "SHARED_STATE_HOST",
    "SHARED_STATE_PORT",
    "SHARED_STATE_API_TOKEN",
    "SHARED_STATE_CORS_ORIGINS",
    "SHARED_STATE_SNAPSHOT_PATH",
    "SHARED_STATE_REQUEST_TIMEOUT_S",
    "SHARED_STATE_SYNC_TIMEOUT_S",
    "SHARED_STATE_SHUTDOWN_TIMEOUT_S",
    "SHARED_STATE_CLIENT_TIMEOUT_S",
    "SHARED_STATE_MAX_CONNECTIONS",
    "SHARED_STATE_ACCESS_LOG",
    "SHARED_STATE_LOG_FORMAT",
    "SHARED_STATE_MAX_BODY_BYTES",
    "SHARED_STATE_ALLOWED_HOSTS",
    "SHARED_STATE_REPLAY_VERSIONS",
    "SHARED_STATE_EVENTS_HEARTBEAT_S",
    "SHARED_STATE_PROPAGATE",
    "SHARED_STATE_CONFLICT_POLICY",
    "SHARED_STATE_REDIS_URL",
    "SHARED_STATE_REDIS_PREFIX",
    "SHARED_STATE_LEASE_TTL_S",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from an empty configuration in an empty working directory."""
    for name in [*ALL_VARIABLES, "STATE_SYNC_INTERVAL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_every_contract_variable_is_a_setting() -> None:
    """The settings know exactly the variables of contract §3 (plus the legacy interval)."""
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert aliases == ALL_VARIABLES | {"STATE_SYNC_INTERVAL"}


def test_defaults_match_the_contract() -> None:
    """With nothing set, both upstreams are disabled and the documented defaults apply."""
    settings = Settings()
    assert settings.anythingllm_base_url is None
    assert settings.librechat_base_url is None
    assert (settings.anythingllm_api, settings.librechat_api) == ("native", "native")
    assert settings.librechat_endpoint_providers == {}
    assert settings.librechat_max_conversations == 10_000
    assert settings.librechat_full_scan_every == 20
    assert settings.sync_interval_s == 30
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.api_token is None
    assert settings.cors_origins == []
    assert settings.snapshot_path is None
    assert settings.request_timeout_s == 10


def test_dotenv_file_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """`.env` in the working directory is read; a variable in the environment overrides it."""
    Path(".env").write_text("SHARED_STATE_PORT=9000\nSHARED_STATE_HOST=0.0.0.0\n")
    monkeypatch.setenv("SHARED_STATE_PORT", "9100")
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHARED_STATE_CORS_ORIGINS is split on commas, blanks dropped."""
    monkeypatch.setenv("SHARED_STATE_CORS_ORIGINS", "http://a.example, http://b.example,")
    assert Settings().cors_origins == ["http://a.example", "http://b.example"]


def test_endpoint_providers_are_endpoint_equals_provider_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LIBRECHAT_ENDPOINT_PROVIDERS maps LibreChat endpoint names to provider names."""
    monkeypatch.setenv("LIBRECHAT_ENDPOINT_PROVIDERS", "Ollama=ollama, groq = groq")
    assert Settings().librechat_endpoint_providers == {"Ollama": "ollama", "groq": "groq"}


def test_bizzy_stays_available(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bizzy` is still accepted for both upstreams."""
    monkeypatch.setenv("ANYTHINGLLM_API", "bizzy")
    monkeypatch.setenv("LIBRECHAT_API", "bizzy")
    assert (Settings().anythingllm_api, Settings().librechat_api) == ("bizzy", "bizzy")


def test_secrets_are_secret_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, tokens and passwords never show in the settings' repr."""
    monkeypatch.setenv("ANYTHINGLLM_API_KEY", "k-123-secret")
    monkeypatch.setenv("SHARED_STATE_API_TOKEN", "t-456-secret")
    settings = Settings()
    assert "secret" not in repr(settings)
    assert settings.anythingllm_api_key is not None
    assert settings.anythingllm_api_key.get_secret_value() == "k-123-secret"


@pytest.mark.parametrize(
    ("ours", "legacy_ms", "expected_s"),
    [(None, "5000", 5.0), ("12", "5000", 12.0), (None, None, 30.0)],
)
def test_the_bizzy_interval_in_milliseconds_is_honoured_when_ours_is_unset(
    monkeypatch: pytest.MonkeyPatch, ours: str | None, legacy_ms: str | None, expected_s: float
) -> None:
    """STATE_SYNC_INTERVAL (ms) applies only when SHARED_STATE_SYNC_INTERVAL_S is unset."""
    if ours is not None:
        monkeypatch.setenv("SHARED_STATE_SYNC_INTERVAL_S", ours)
    if legacy_ms is not None:
        monkeypatch.setenv("STATE_SYNC_INTERVAL", legacy_ms)
    assert Settings().sync_interval_s == expected_s


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHARED_STATE_PORT", "eighty"),
        ("SHARED_STATE_PORT", "70000"),
        ("SHARED_STATE_SYNC_INTERVAL_S", "0"),
        ("SHARED_STATE_REQUEST_TIMEOUT_S", "-1"),
        ("ANYTHINGLLM_BASE_URL", "not a url"),
        ("ANYTHINGLLM_API", "graphql"),
        ("LIBRECHAT_MAX_CONVERSATIONS", "0"),
        ("STATE_SYNC_INTERVAL", "-5"),
        ("LIBRECHAT_ENDPOINT_PROVIDERS", "Ollama"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """The error message is a single line that starts from the variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_invalid_settings(caught.value)
    assert "\n" not in message
    assert f"{variable}:" in message


def test_an_invalid_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value never appears in the message: it may be a secret."""
    monkeypatch.setenv("ANYTHINGLLM_BASE_URL", "hunter2-not-a-url")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "hunter2" not in describe_invalid_settings(caught.value)


def test_half_a_login_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An email without a password (or the reverse) is a configuration error."""
    monkeypatch.setenv("LIBRECHAT_EMAIL", "bot@example.com")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "LIBRECHAT_EMAIL and LIBRECHAT_PASSWORD" in describe_invalid_settings(caught.value)


def test_the_command_stops_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """`shared-state serve` with an invalid variable prints one line on stderr and exits 2."""
    env = {"SHARED_STATE_PORT": "eighty", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "shared_state", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SHARED_STATE_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_native_librechat_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """LibreChat's real API needs a service account (or a token): said at start-up."""
    monkeypatch.setenv("LIBRECHAT_BASE_URL", "http://librechat:3080")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "LIBRECHAT_EMAIL" in describe_invalid_settings(caught.value)
    monkeypatch.setenv("LIBRECHAT_TOKEN", "t")
    assert Settings().librechat_token is not None


def test_propagation_is_off_by_default_with_the_anythingllm_policy() -> None:
    """With nothing set nothing propagates, and AnythingLLM wins a conflict (contract §10)."""
    settings = Settings()
    assert settings.propagate == []
    assert settings.conflict_policy == "anythingllm"


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        ("llm", ["llm"]),
        ("ui", ["ui"]),
        ("llm,ui", ["llm", "ui"]),
        (" ui , llm,llm ", ["ui", "llm"]),
    ],
)
def test_propagate_takes_comma_separated_groups(
    monkeypatch: pytest.MonkeyPatch, raw: str, groups: list[str]
) -> None:
    """`SHARED_STATE_PROPAGATE` is a comma-separated list of `llm` and `ui`, each kept once."""
    monkeypatch.setenv("SHARED_STATE_PROPAGATE", raw)
    assert Settings().propagate == groups


@pytest.mark.parametrize(
    ("name", "value"),
    [("SHARED_STATE_PROPAGATE", "llm,colors"), ("SHARED_STATE_CONFLICT_POLICY", "newest")],
)
def test_an_invalid_propagation_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """An unknown group or policy stops start-up with one line naming the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_invalid_settings(caught.value)
    assert name in message
    assert "\n" not in message


def test_redis_is_off_by_default_with_the_documented_prefix_and_ttl() -> None:
    """Without `SHARED_STATE_REDIS_URL` there is no Redis; the prefix and TTL defaults
    are contract §11's."""
    settings = Settings()
    assert settings.redis_url is None
    assert settings.redis_prefix == "shared-state"
    assert settings.lease_ttl_s == 15


def test_a_redis_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL may hold a password: it is kept, but never in the settings' repr."""
    monkeypatch.setenv("SHARED_STATE_REDIS_URL", "redis://:hunter2@redis:6379/0")
    settings = Settings()
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://:hunter2@redis:6379/0"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHARED_STATE_REDIS_URL", "http://:hunter2@redis:6379"),
        ("SHARED_STATE_REDIS_URL", "hunter2"),
        ("SHARED_STATE_REDIS_PREFIX", "has space"),
        ("SHARED_STATE_REDIS_PREFIX", "x" * 101),
        ("SHARED_STATE_LEASE_TTL_S", "0.5"),
        ("SHARED_STATE_LEASE_TTL_S", "soon"),
    ],
)
def test_an_invalid_redis_setting_names_its_variable_and_never_its_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A bad Redis setting stops start-up with one line naming the variable; a bad URL's
    password is not in it."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_invalid_settings(caught.value)
    assert name in message
    assert "hunter2" not in message
    assert "\n" not in message
