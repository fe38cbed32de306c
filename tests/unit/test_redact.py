"""Secrets are removed from upstream objects before they can enter the state."""

from __future__ import annotations

from typing import Any

import pytest

from shared_state.domain.models import UpstreamSnapshot, VectorDbValues
from shared_state.domain.redact import is_secret_name, redact

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
