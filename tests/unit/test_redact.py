"""Secrets are removed from upstream objects before they can enter the state."""

from __future__ import annotations

from typing import Any

import pytest

from shared_state.domain.models import UpstreamSnapshot, VectorDbValues
from shared_state.domain.redact import is_secret_name, looks_like_credential, redact, safe_user

SECRET_NAMES = [
    "password",
    "OpenAiKey",
    "apiKey",
    "AuthToken",
    "refreshToken",
    "totpSecret",
    "PGVectorConnectionString",
    "backupCodes",
    "federatedTokens",
    "key",
    "api_key",
    "OPENAI_API_KEY",
    "JWT_SECRET",
    "OllamaLLMAuthToken",
    "AwsBedrockLLMAccessKey",
    "MilvusPassword",
    "AstraDBApplicationToken",
    "jwt",
    "sessionTokens",
    "otpauthUrl",
    "passphrase",
    "mfaSeed",
    "pass",
    "totp",
    "passwordHash",
    "salt",
    "recoveryCodes",
    "auth",
    "bearer",
    "refresh_token",
    "accessTokens",
    "SESSION_ID",
    "seedPhrase",
    "Authorization",
]
ORDINARY_NAMES = [
    "maxTokens",
    "MaxTokens",
    "OllamaLLMTokenLimit",
    "tokenLimit",
    "monkey",
    "username",
    "email",
    "openAiTemp",
    "keyword",
    "slug",
    "id",
    "authorId",
    "author",
    "bypassCache",
    "compass",
    "footprint",
    "hashtags",
    "seed",
    "maxContextTokens",
    "promptTokens",
    "tokenCount",
    "passage",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_named_field_is_recognised(name: str) -> None:
    """A field named like a password, key, token or secret is a secret."""
    assert is_secret_name(name) is True


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_field_is_not_a_secret(name: str) -> None:
    """Names that merely contain `key` or `token` in another sense are kept."""
    assert is_secret_name(name) is False


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_field_is_dropped_at_any_depth(name: str) -> None:
    """A secret-named field is removed from the top level, nested objects and list items."""
    value = {
        name: "s3cret",
        "keep": 1,
        "nested": {name: "s3cret", "keep": 2, "items": [{name: "s3cret", "keep": 3}]},
    }

    assert redact(value) == {
        "keep": 1,
        "nested": {"keep": 2, "items": [{"keep": 3}]},
    }


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_field_is_kept_at_any_depth(name: str) -> None:
    """An ordinary field survives redaction unchanged, nested or not."""
    value = {name: 4096, "nested": [{name: "x"}]}

    assert redact(value) == {name: 4096, "nested": [{name: "x"}]}


def test_secret_field_holding_an_object_is_dropped_whole() -> None:
    """A secret name drops its whole value, whatever that value is."""
    value = {"refreshToken": [{"token": "abc", "expires": 1}], "username": "ada"}

    assert redact(value) == {"username": "ada"}


@pytest.mark.parametrize("value", [None, 0, "", "password", [1, "x"], 3.5, True])
def test_redact_returns_non_objects_as_they_are(value: Any) -> None:
    """Scalars and lists without objects pass through unchanged."""
    assert redact(value) == value


def test_redact_leaves_its_input_untouched() -> None:
    """Redaction returns a copy; the object passed in still holds its fields."""
    value = {"password": "hunter2", "nested": {"apiKey": "k"}}

    redact(value)

    assert value == {"password": "hunter2", "nested": {"apiKey": "k"}}


def test_upstream_snapshot_strips_secrets_from_every_object_section() -> None:
    """Whatever an adapter passes in, a snapshot holds no secret in user, lists or vector db."""
    snapshot = UpstreamSnapshot(
        user={"id": 1, "username": "ada", "password": "hunter2", "refreshToken": "rt"},
        workspaces=[{"id": 1, "slug": "research", "apiKey": "k", "openAiTemp": 0.5}],
        conversations=[{"id": "c-1", "meta": {"AuthToken": "t", "title": "Plan"}}],
        vector_db=VectorDbValues(
            provider="pgvector",
            settings={"PGVectorConnectionString": "postgres://u:pw@db", "PGVectorTableName": "t"},
        ),
    )

    assert snapshot.user == {"id": 1, "username": "ada"}
    assert snapshot.workspaces == [{"id": 1, "slug": "research", "openAiTemp": 0.5}]
    assert snapshot.conversations == [{"id": "c-1", "meta": {"title": "Plan"}}]
    assert snapshot.vector_db.settings == {"PGVectorTableName": "t"}


def test_upstream_snapshot_read_from_json_strips_secrets() -> None:
    """A snapshot validated from camelCase JSON (as the snapshot file is) is redacted too."""
    snapshot = UpstreamSnapshot.model_validate_json(
        '{"user": {"id": 1, "totpSecret": "t", "backupCodes": ["1"]},'
        ' "vectorDb": {"provider": "qdrant", "settings": {"QdrantApiKey": "k", "url": "u"}}}'
    )

    assert snapshot.user == {"id": 1}
    assert snapshot.vector_db.settings == {"url": "u"}


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
CREDENTIAL_VALUES = [
    JWT,
    f"token {JWT} in a sentence",
    "otpauth://totp/LibreChat:ada?secret=JBSWY3DPEHPK3PXP",
    "OTPAUTH://hotp/x?secret=A",
    "Bearer abcdef0123456789",
    "bearer sk-live.abcdefgh",
    "postgres://admin:hunter2@db:5432/app",
    "redis://:hunter2@cache:6379",
    "see https://ada:pw@example.com/x",
]
ORDINARY_VALUES = [
    "Compare AnythingLLM and LibreChat settings",
    "https://example.com/a:b@c",
    "http://ollama:11434",
    "https://ada@example.com/profile",
    "eyJ is how base64 JSON starts",
    "The bearer of bad news",
    "2026-08-01T12:00:00.000Z",
    "",
]


@pytest.mark.parametrize("text", CREDENTIAL_VALUES)
def test_credential_looking_string_is_dropped_whatever_its_name(text: str) -> None:
    """A JWT, an otpauth URL, a bearer value or a URL with a password goes, under any name."""
    assert looks_like_credential(text) is True
    value = {"title": text, "keep": "x", "list": [text, "y"], "nested": {"iconURL": text}}

    assert redact(value) == {"keep": "x", "list": ["y"], "nested": {}}


@pytest.mark.parametrize("text", ORDINARY_VALUES)
def test_ordinary_string_is_kept(text: str) -> None:
    """Text that merely resembles a credential (a URL without a password) is kept."""
    assert looks_like_credential(text) is False
    assert redact({"title": text, "list": [text]}) == {"title": text, "list": [text]}


def test_redact_keeps_an_items_ordinary_fields_and_types() -> None:
    """A conversation item keeps its own fields, numbers, flags and nulls untouched."""
    item = {
        "conversationId": "c-1",
        "authorId": "u-1",
        "seed": 42,
        "maxContextTokens": 128000,
        "pinned": True,
        "iconURL": None,
        "tags": ["a", "b"],
    }

    assert redact(item) == item


LC_USER = {
    "_id": "665f",
    "id": "665f",
    "name": "Ada",
    "username": "ada",
    "email": "ada@example.com",
    "emailVerified": True,
    "avatar": None,
    "provider": "local",
    "role": "ADMIN",
    "plugins": ["dalle"],
    "twoFactorEnabled": False,
    "termsAccepted": True,
    "personalization": {"memories": True},
    "favorites": [{"model": "gpt-4o", "endpoint": "openAI"}, {"agentId": "agent_abc"}],
    "skillStates": {"search": True},
    "createdAt": "2026-06-01T10:00:00.000Z",
    "updatedAt": "2026-06-20T08:00:00.000Z",
    "tenantId": "tenant-1",
}
ALLM_USER = {
    "id": 1,
    "username": "admin",
    "pfpFilename": None,
    "role": "admin",
    "suspended": 0,
    "seen_recovery_codes": True,
    "createdAt": "2026-08-01T12:00:00.000Z",
    "lastUpdatedAt": "2026-08-01T12:00:00.000Z",
    "dailyMessageLimit": None,
    "bio": "",
}


@pytest.mark.parametrize("user", [LC_USER, ALLM_USER], ids=["librechat", "anythingllm"])
def test_safe_user_keeps_every_documented_field(user: dict[str, Any]) -> None:
    """The documented user objects of both upstreams pass through whole."""
    assert safe_user(user) == user


def test_safe_user_drops_nested_secrets_and_unknown_fields() -> None:
    """Secrets nested in `personalization` or `favorites`, and unknown fields, are dropped."""
    user = {
        **LC_USER,
        "personalization": {
            "memories": True,
            "jwt": JWT,
            "sessionTokens": ["s"],
            "otpauthUrl": "otpauth://totp/x?secret=A",
            "passphrase": "p",
            "mfaSeed": "m",
            "auth": {"pass": "p"},
            "note": "harmless but unknown",
        },
        "favorites": [
            {"model": "gpt-4o", "endpoint": "openAI", "token": "t"},
            {"agentId": {"nested": "object"}},
            "not an object",
        ],
        "skillStates": {"search": True, "apiKey": True, "other": "on"},
        "googleId": "g-1",
        "password": "hunter2",
        "refreshToken": [{"refreshToken": "rt"}],
        "unknown": {"anything": 1},
    }

    assert safe_user(user) == {
        **LC_USER,
        "favorites": [{"model": "gpt-4o", "endpoint": "openAI"}],
        "skillStates": {"search": True},
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", True),
        ("id", None),
        ("email", 5),
        ("avatar", "https://ada:pw@cdn.example/a.png"),
        ("bio", JWT),
        ("bio", "x" * 2001),
        ("emailVerified", "yes"),
        ("suspended", "0"),
        ("dailyMessageLimit", 1.5),
        ("plugins", "dalle"),
        ("personalization", ["memories"]),
        ("favorites", {"model": "gpt-4o"}),
        ("skillStates", []),
    ],
)
def test_safe_user_drops_a_known_field_of_the_wrong_shape(name: str, value: Any) -> None:
    """A known field is kept only in its known shape: a wrong one is left out."""
    assert safe_user({"username": "ada", name: value}) == {"username": "ada"}


def test_safe_user_keeps_personalization_without_memories_as_empty() -> None:
    """A `personalization` without a boolean `memories` is kept empty, not with its keys."""
    assert safe_user({"personalization": {"memories": "yes", "jwt": JWT}}) == {
        "personalization": {}
    }


def test_upstream_snapshot_keeps_only_the_users_safe_fields() -> None:
    """The snapshot applies the allow-list to its user, and redact() to its items."""
    snapshot = UpstreamSnapshot(
        user={"id": 1, "username": "ada", "personalization": {"memories": False, "jwt": JWT}},
        conversations=[{"id": "c-1", "title": "Plan", "spec": JWT, "authorId": "u"}],
    )

    assert snapshot.user == {"id": 1, "username": "ada", "personalization": {"memories": False}}
    assert snapshot.conversations == [{"id": "c-1", "title": "Plan", "authorId": "u"}]
