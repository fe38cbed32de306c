"""Tests of propagation's pure decision: `decide` and `settle` for one field (contract §10)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_state.domain.models import (
    LlmValues,
    SourceName,
    UiValues,
    UpstreamSnapshot,
    WritableSection,
)
from shared_state.domain.propagation import (
    FIELDS,
    NO_BASE,
    PAIR,
    Base,
    Conflict,
    ConflictPolicy,
    Decision,
    Nothing,
    Write,
    decide,
    propagated_fields,
    settle,
)

Stores = dict[SourceName, dict[WritableSection, frozenset[str]]]
POLICIES: tuple[ConflictPolicy, ...] = ("anythingllm", "librechat", "manual")

# A few values, so that draws often coincide (equal values, a value equal to the base).
scalars = st.sampled_from([None, 0, 0.7, 1.5, "gpt-4o", "gpt-4o-mini"])
pairs = st.builds(
    lambda p, m: {"provider": p, "model": m},
    st.sampled_from([None, "openai", "anthropic"]),
    st.sampled_from([None, "gpt-4o", "claude-3"]),
)
values = st.one_of(scalars, pairs)
bases: st.SearchStrategy[Base] = st.one_of(st.just(NO_BASE), values)


def apply(decision: Decision, base: Base, a: Any, lc: Any) -> tuple[Base, Any, Any]:
    """What carrying the decision out leaves: (base, AnythingLLM's value, LibreChat's)."""
    if isinstance(decision, Nothing):
        return decision.base, a, lc
    if isinstance(decision, Write):
        if decision.target == "anythingllm":
            return decision.value, decision.value, lc
        return decision.value, a, decision.value
    return base, a, lc  # an open conflict writes nothing


@pytest.mark.parametrize(
    ("base", "a", "lc", "expected"),
    [
        ("x", "x", "x", Nothing(base="x")),
        ("x", "y", "y", Nothing(base="y")),
        (NO_BASE, "y", "y", Nothing(base="y")),
        ("x", "y", "x", Write(value="y", source="anythingllm", target="librechat")),
        ("x", "x", "y", Write(value="y", source="librechat", target="anythingllm")),
        ("x", "y", "z", Conflict(values={"anythingllm": "y", "librechat": "z"}, base="x")),
        (NO_BASE, "y", "z", Conflict(values={"anythingllm": "y", "librechat": "z"}, base=NO_BASE)),
        (None, "y", None, Write(value="y", source="anythingllm", target="librechat")),
    ],
)
def test_decide_follows_the_table(base: Base, a: Any, lc: Any, expected: Decision) -> None:
    """One side changed: write it to the other; both alike: move the base; else conflict."""
    assert decide(base, a, lc) == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("anythingllm", Write(value="y", source="anythingllm", target="librechat")),
        ("librechat", Write(value="z", source="librechat", target="anythingllm")),
    ],
)
def test_a_winning_policy_writes_its_side_to_the_other(
    policy: ConflictPolicy, expected: Write
) -> None:
    """`anythingllm` and `librechat` settle a conflict by writing the winner's value."""
    conflict = Conflict(values={"anythingllm": "y", "librechat": "z"}, base="x")
    assert settle(conflict, policy) == expected


def test_the_manual_policy_leaves_the_conflict_open() -> None:
    """`manual` writes nothing: the conflict stays until an API write settles it."""
    conflict = Conflict(values={"anythingllm": "y", "librechat": "z"}, base=NO_BASE)
    assert settle(conflict, "manual") is conflict


@given(base=bases, a=values, lc=values, policy=st.sampled_from(POLICIES))
def test_applying_a_decision_then_deciding_again_writes_nothing(
    base: Base, a: Any, lc: Any, policy: ConflictPolicy
) -> None:
    """For any base and pair of values the decision is nothing, one write or a conflict;
    carried out, the next decision writes nothing (no oscillation)."""
    decision = decide(base, a, lc)
    if isinstance(decision, Conflict):
        decision = settle(decision, policy)
    assert isinstance(decision, Nothing | Write | Conflict)
    if isinstance(decision, Write):
        assert decision.target != decision.source
        assert decision.value == (a if decision.source == "anythingllm" else lc)

    again = decide(*apply(decision, base, a, lc))

    if isinstance(decision, Conflict):
        assert policy == "manual"
        assert again == decision  # still listed, still nothing written
    else:
        assert isinstance(again, Nothing)
        assert again.base == apply(decision, base, a, lc)[1]


@given(base=bases, a=values, lc=values)
def test_a_decision_never_writes_a_value_equal_to_the_target(base: Base, a: Any, lc: Any) -> None:
    """A write always changes its target: equal upstreams are never written to."""
    decision = decide(base, a, lc)
    if isinstance(decision, Write):
        assert decision.value != (a if decision.target == "anythingllm" else lc)


def test_the_pair_is_one_value_and_only_complete_pairs_are_written() -> None:
    """Provider and model are read as one value; a half pair or nothing is not writable."""
    snapshot = UpstreamSnapshot(llm=LlmValues(provider="openai", model="gpt-4o"))
    assert PAIR.value_of(snapshot) == {"provider": "openai", "model": "gpt-4o"}
    assert PAIR.value_of(UpstreamSnapshot()) is None
    assert PAIR.as_write({"provider": "openai", "model": "gpt-4o"}) == {
        "provider": "openai",
        "model": "gpt-4o",
    }
    assert PAIR.is_complete({"provider": "openai", "model": "gpt-4o"})
    assert not PAIR.is_complete({"provider": "openai", "model": None})
    assert not PAIR.is_complete(None)


def test_fields_propagate_only_where_both_upstreams_store_them() -> None:
    """Native AnythingLLM stores only the pair; `ui` needs two stores, which no pair has."""
    native: Stores = {
        "anythingllm": {"llm": frozenset({"provider", "model"})},
        "librechat": {"llm": frozenset({"provider", "model", "temperature", "max_tokens"})},
    }
    bizzy: Stores = {
        "anythingllm": {"llm": frozenset({"provider", "model", "temperature", "max_tokens"})},
        "librechat": {
            "llm": frozenset({"provider", "model", "temperature", "max_tokens"}),
            "ui": frozenset({"theme", "font_size"}),
        },
    }
    assert [f.name for f in propagated_fields(["llm", "ui"], native)] == ["provider+model"]
    assert [f.name for f in propagated_fields(["llm", "ui"], bizzy)] == [
        "provider+model",
        "temperature",
        "maxTokens",
    ]
    assert propagated_fields(["ui"], bizzy) == ()
    assert propagated_fields(["llm"], {"librechat": bizzy["librechat"]}) == ()


def test_every_field_reads_its_own_value() -> None:
    """Each field reads its own part of a snapshot, under its §4 name."""
    snapshot = UpstreamSnapshot(
        llm=LlmValues(provider="openai", model="m", temperature=0.2, max_tokens=99),
        ui=UiValues(theme="dark", font_size="large"),
    )
    read = {f.name: f.value_of(snapshot) for f in FIELDS}
    assert read == {
        "provider+model": {"provider": "openai", "model": "m"},
        "temperature": 0.2,
        "maxTokens": 99,
        "theme": "dark",
        "fontSize": "large",
    }
