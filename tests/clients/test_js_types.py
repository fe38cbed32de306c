"""The JS client's `index.d.ts` cannot drift from the service's models.

Every interface in `clients/js/index.d.ts` whose doc comment says `mirrors X` must
declare exactly the properties of schema X, each nullable (`| null`) exactly when the
schema allows null. X is a component of the OpenAPI schema that `create_app` builds, or
one of the event models (contract §8), which the schema does not hold. Request bodies
(`...Update`) are optional (`?`) where the schema does not require a field; answers
always carry every field (pydantic writes defaults too), so their interfaces declare
none optional, which `test_answers_carry_every_field` checks on real answers.

The parser reads the d.ts layout its header describes; it is small on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shared_state import Settings, create_app
from shared_state.domain.events import ChangedEvent, ItemChanges, SnapshotEvent
from shared_state.domain.models import SharedState, StateSettings, User

DTS = Path(__file__).resolve().parents[2] / "clients" / "js" / "index.d.ts"

_INTERFACE = re.compile(
    r"/\*\* mirrors (?P<schema>\w+) \*/\s*\nexport interface (?P<name>\w+)(?:<[^>]*>)?"
    r"(?: extends (?P<base>\w+))? \{\n(?P<body>.*?)\n\}",
    re.DOTALL,
)
_ANY_INTERFACE = re.compile(
    r"export interface (?P<name>\w+)(?:<[^>]*>)?(?: extends (?P<base>\w+))? \{\n(?P<body>.*?)\n\}",
    re.DOTALL,
)
_PROPERTY = re.compile(r"^\s+(?P<prop>\w+)(?P<optional>\?)?: (?P<type>.+);$")


@dataclass(frozen=True)
class Declared:
    optional: bool
    nullable: bool


def _properties(body: str) -> dict[str, Declared]:
    props: dict[str, Declared] = {}
    for line in body.splitlines():
        match = _PROPERTY.match(line)
        if match is None:
            continue  # comments, index signatures (`[field: string]: unknown;`)
        union = [part.strip() for part in match["type"].split("|")]
        props[match["prop"]] = Declared(bool(match["optional"]), "null" in union)
    return props


@cache
def _declared() -> dict[str, tuple[str, dict[str, Declared]]]:
    """Schema name -> (interface name, its properties, those of its base included)."""
    text = DTS.read_text()
    every = {m["name"]: m for m in _ANY_INTERFACE.finditer(text)}

    def props_of(name: str) -> dict[str, Declared]:
        match = every[name]
        inherited = props_of(match["base"]) if match["base"] else {}
        return {**inherited, **_properties(match["body"])}

    return {m["schema"]: (m["name"], props_of(m["name"])) for m in _INTERFACE.finditer(text)}


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    app = create_app(Settings(_env_file=None))
    schemas: dict[str, dict[str, Any]] = dict(app.openapi()["components"]["schemas"])
    event_models: list[type[BaseModel]] = [ChangedEvent, SnapshotEvent, ItemChanges]
    for model in event_models:
        schemas[model.__name__] = model.model_json_schema(by_alias=True, mode="serialization")
    return schemas


def _allows_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null" or "null" in (schema.get("type") or []):
        return True
    return any(_allows_null(branch) for branch in schema.get("anyOf", []))


MIRRORED = sorted(_declared())


def test_the_dts_mirrors_the_models_it_should() -> None:
    """The d.ts mirrors the state, its parts, the answers, the write bodies and the events."""
    assert set(MIRRORED) >= {
        "SharedState", "User", "StateSettings", "LlmSettings", "UiSettings",
        "EmbeddingSettings", "VectorDbSettings", "SourceStatus", "SourceSchedule",
        "StatusAnswer", "SyncAnswer", "LlmSettingsUpdate", "UiSettingsUpdate",
        "ErrorAnswer", "WriteFailedAnswer", "ChangedEvent", "SnapshotEvent", "ItemChanges",
    }  # fmt: skip


@pytest.mark.parametrize("schema_name", MIRRORED)
def test_interface_declares_the_schema_properties(schema_name: str) -> None:
    """Same property names; nullable where the schema allows null; optional only where
    a request body does not require the field."""
    interface, declared = _declared()[schema_name]
    schema = _schemas()[schema_name]
    properties: dict[str, Any] = schema.get("properties", {})
    assert set(declared) == set(properties), (
        f"index.d.ts `{interface}` and schema `{schema_name}` differ: "
        f"missing {sorted(set(properties) - set(declared))}, "
        f"extra {sorted(set(declared) - set(properties))}"
    )
    required = set(schema.get("required", []))
    is_body = schema_name.endswith("Update")
    for name, prop in properties.items():
        assert declared[name].nullable == _allows_null(prop), (
            f"`{interface}.{name}`: the schema {'allows' if _allows_null(prop) else 'forbids'} null"
        )
        expected_optional = is_body and name not in required
        assert declared[name].optional == expected_optional, (
            f"`{interface}.{name}` should {'' if expected_optional else 'not '}be optional"
        )


def test_answers_carry_every_field() -> None:
    """What justifies non-optional answer interfaces: a dumped model has every property
    of its schema, defaults included."""
    for model in (SharedState(), StateSettings(), User()):
        schema = type(model).model_json_schema(by_alias=True, mode="serialization")
        assert set(model.model_dump(by_alias=True)) == set(schema["properties"])


def test_the_parser_reads_this_layout() -> None:
    """The parser is not vacuous: it finds properties, optionals, nulls and bases."""
    declared = _declared()
    assert declared["LlmSettings"][1]["provider"] == Declared(optional=False, nullable=True)
    assert declared["LlmSettingsUpdate"][1]["model"] == Declared(optional=True, nullable=False)
    assert "status" in declared["SourceSchedule"][1]  # from `extends Source`
