"""`ItemList`: `replaced` against a plain reference model over lists that span several
chunks, `changes_since` by delta against the full comparison, and every public method,
the JSON it holds, secrets kept out, NaN refused and lone surrogates made `?`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared_state.domain.items import (
    CHUNK_ITEMS,
    EMPTY,
    REDACTED_CONTEXT,
    ItemDelta,
    ItemList,
    key_of,
    render_item,
)

Item = dict[str, Any]


def by_rank(item: Mapping[str, Any]) -> float:
    """The rank the tests give their items: the `rank` field they carry."""
    return float(item["rank"])


def item(key: str, rank: int = 0, version: int = 0) -> Item:
    """An item whose JSON changes with its rank and version, as a conversation's does
    with its `updatedAt`."""
    return {"id": key, "rank": rank, "v": version}


def as_json(items: Sequence[Mapping[str, Any]]) -> bytes:
    return b"[" + b",".join(render_item(i) for i in items) + b"]"


# --- the reference model ----------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """What `replaced` should give, written the plain way: a list of dicts."""

    items: list[Item]
    is_ranked: bool

    def replaced(
        self, changed: Mapping[str, Item], removed: Sequence[str], limit: int | None
    ) -> Model:
        current = {i["id"]: i for i in self.items}
        # An item that comes back as it is, is no change (it keeps its place).
        changes = {k: v for k, v in changed.items() if current.get(k) != v}
        gone = set(removed)
        if self.is_ranked:
            kept = [i for i in self.items if i["id"] not in gone and i["id"] not in changes]
            # Stable by rank; a changed item goes before kept ones of equal rank.
            tagged = [(by_rank(i), 0, i) for i in changes.values()]
            tagged += [(by_rank(i), 1, i) for i in kept]
            result = [i for _, _, i in sorted(tagged, key=lambda t: (t[0], t[1]))]
        else:
            result = [changes.get(i["id"], i) for i in self.items if i["id"] not in gone]
            result += [v for k, v in changes.items() if k not in current]
        if limit is not None:
            result = result[:limit]
        return Model(result, self.is_ranked)

    def delta(self, old: Model) -> tuple[set[str], set[str], set[str]]:
        before = {i["id"]: i for i in old.items}
        after = {i["id"]: i for i in self.items}
        added = set(after) - set(before)
        updated = {k for k in after if k in before and before[k] != after[k]}
        return added, updated, set(before) - set(after)


def keys_of(delta: ItemDelta) -> tuple[set[str], set[str], set[str]]:
    return set(delta.added), set(delta.updated), set(delta.removed)


def assert_matches(actual: ItemList, expected: Model) -> None:
    """Every reading of `actual` agrees with the model's list."""
    assert actual.json == as_json(expected.items)
    assert json.loads(actual.json) == expected.items
    assert list(actual) == expected.items
    assert list(actual.ids()) == [i["id"] for i in expected.items]
    assert len(actual) == len(expected.items)
    for entry in expected.items[:: max(len(expected.items) // 50, 1)]:
        assert actual.item_json(entry["id"]) == render_item(entry)
        assert actual.has(entry["id"])
        rank = by_rank(entry) if expected.is_ranked else None
        assert actual.rank_of(entry["id"]) == rank
    if expected.is_ranked:
        assert actual.first_rank == (by_rank(expected.items[0]) if expected.items else None)


@st.composite
def rounds(
    draw: st.DrawFn,
) -> tuple[bool, list[Item], list[tuple[dict[str, Item], list[str], int | None]]]:
    """A starting list of up to ~1,000 items (several chunks) and one to three rounds of
    changes: updates, moves, new items, removals and a limit. Bulk comes from a
    hypothesis-driven `Random` so examples stay cheap; ranks come from a small range so
    that ties are common."""
    is_ranked = draw(st.booleans(), label="is_ranked")
    rng = draw(st.randoms(use_true_random=False))
    size = draw(st.sampled_from([0, 1, CHUNK_ITEMS - 1, CHUNK_ITEMS, 2 * CHUNK_ITEMS + 3, 1_000]))
    top = draw(st.sampled_from([3, 40, 10_000]), label="rank range")
    start = [item(f"k{n}", rng.randrange(top)) for n in range(size)]
    next_key = size
    plans = []
    for _ in range(draw(st.integers(1, 3), label="rounds")):
        # Up to 2.2 chunks of changes: enough for a rebuilt chunk to split.
        count = draw(st.sampled_from([0, 1, 5, 60, CHUNK_ITEMS * 2 + 50]), label="changes")
        changed: dict[str, Item] = {}
        for _ in range(count):
            if rng.random() < 0.5 or next_key == 0:
                key = f"k{next_key}"
                next_key += 1
            else:
                key = f"k{rng.randrange(next_key)}"
            changed[key] = item(key, rng.randrange(top), rng.randrange(3))
        removable = [f"k{n}" for n in range(next_key) if f"k{n}" not in changed]
        removed = rng.sample(removable, min(len(removable), draw(st.sampled_from([0, 1, 30]))))
        removed.append("never-there")
        limit = draw(st.sampled_from([None, None, 0, 1, 700, 1_500]), label="limit")
        plans.append((changed, removed, limit))
    return is_ranked, start, plans


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_replaced_agrees_with_the_reference_model(
    case: tuple[bool, list[Item], list[tuple[dict[str, Item], list[str], int | None]]],
) -> None:
    """Round after round, `replaced` gives the model's list, and the delta it remembers
    names what a full comparison of the two lists names."""
    is_ranked, start, plans = case
    current = ItemList.from_items(start, rank=by_rank if is_ranked else None)
    model = Model(sorted(start, key=by_rank) if is_ranked else start, is_ranked)
    assert_matches(current, model)
    for changed, removed, limit in plans:
        nxt = current.replaced(
            {k: (v, by_rank(v)) for k, v in changed.items()}, removed=removed, limit=limit
        )
        expected = model.replaced(changed, removed, limit)
        assert_matches(nxt, expected)
        by_delta = nxt.changes_since(current)
        compared = ItemList.from_items(expected.items).changes_since(current)
        assert keys_of(by_delta) == keys_of(compared) == expected.delta(model)
        held = {i["id"]: i for i in model.items}
        is_idle = all(held.get(k) == v for k, v in changed.items()) and not (
            set(removed) & set(held)
        )
        if is_idle and (limit is None or len(model.items) <= limit):
            assert nxt is current
        current, model = nxt, expected


# --- building ---------------------------------------------------------------------------


def test_from_items_sorts_a_ranked_list_stably() -> None:
    """With `rank`, items are sorted by it; equal ranks keep the order they came in."""
    items = [item("a", 2), item("b", 1), item("c", 2), item("d", 1)]

    ranked = ItemList.from_items(items, rank=by_rank)

    assert list(ranked.ids()) == ["b", "d", "a", "c"]
    assert ranked.first_rank == 1.0


def test_from_items_without_rank_keeps_the_order_given() -> None:
    """A list without ranks is the items in order, and tells no ranks."""
    plain = ItemList.from_items([item("b"), item("a")])

    assert list(plain.ids()) == ["b", "a"]
    assert plain.first_rank is None
    assert plain.rank_of("a") is None


def test_a_repeated_id_keeps_its_first_item() -> None:
    """`1` and `"1"` are one key: the second item with it is dropped."""
    items = ItemList.from_items([{"id": 1, "v": "first"}, {"id": "1", "v": "second"}, {"id": 2}])

    assert list(items) == [{"id": 1, "v": "first"}, {"id": 2}]


@pytest.mark.parametrize("bad", [{}, {"id": None}, {"id": True}, {"id": 1.5}, {"id": ["x"]}])
def test_an_item_without_a_string_or_integer_id_is_refused(bad: Item) -> None:
    """Every item needs an id that is a string or an integer (not a bool)."""
    with pytest.raises(ValueError, match="needs an id"):
        ItemList.from_items([bad])
    with pytest.raises(ValueError, match="needs an id"):
        key_of(bad)


def test_ranked_gives_an_empty_ranked_list() -> None:
    """`ranked()` is empty and keeps what is put in sorted by rank."""
    empty = ItemList.ranked()

    filled = empty.replaced({"b": (item("b", 2), 2.0), "a": (item("a", 1), 1.0)})

    assert len(empty) == 0
    assert empty.json == b"[]"
    assert empty.first_rank is None
    assert list(filled.ids()) == ["a", "b"]


def test_replaced_with_nothing_new_is_the_same_list() -> None:
    """Changes identical to the items held, unknown removals and a loose limit change nothing."""
    items = ItemList.from_items([item("a", 1), item("b", 2)], rank=by_rank)

    same = items.replaced({"a": (item("a", 1), 1.0)}, removed=["zz"], limit=2)

    assert same is items


def test_replaced_updates_in_place_and_appends_in_a_list_without_ranks() -> None:
    """Without ranks an updated item keeps its place and a new one goes last."""
    items = ItemList.from_items([item("a"), item("b"), item("c")])

    nxt = items.replaced({"b": (item("b", version=1), 0.0), "d": (item("d"), 0.0)})

    assert list(nxt) == [item("a"), item("b", version=1), item("c"), item("d")]
    delta = nxt.changes_since(items)
    assert (delta.added, delta.updated, delta.removed) == (("d",), ("b",), ())


def test_replaced_moves_a_changed_item_before_others_of_its_rank() -> None:
    """In a ranked list a changed item sorts by its new rank, ahead of equal ranks."""
    items = ItemList.from_items([item("a", 1), item("b", 2), item("c", 3)], rank=by_rank)

    nxt = items.replaced({"c": (item("c", 2), 2.0)})

    assert list(nxt.ids()) == ["a", "c", "b"]
    assert nxt.rank_of("c") == 2.0


def test_replaced_limit_keeps_the_first_items_and_reports_the_rest_removed() -> None:
    """`limit` keeps the first items; those cut off are in the delta's `removed`."""
    items = ItemList.from_items([item(f"k{n}", n) for n in range(5)], rank=by_rank)

    nxt = items.replaced({}, limit=2)

    assert list(nxt.ids()) == ["k0", "k1"]
    assert set(nxt.changes_since(items).removed) == {"k2", "k3", "k4"}
    assert not nxt.has("k2")


def test_a_rebuilt_chunk_that_outgrows_twice_its_size_still_reads_right() -> None:
    """Three chunks' worth of new items landing in one chunk split and read in order."""
    start = ItemList.from_items([item(f"old{n}", 2 * n) for n in range(10)], rank=by_rank)
    many = {f"new{n}": (item(f"new{n}", 1), 1.0) for n in range(3 * CHUNK_ITEMS)}

    nxt = start.replaced(many)
    last = nxt.replaced({"old9": (item("old9", 0), 0.0)})

    assert len(nxt) == 10 + 3 * CHUNK_ITEMS
    assert list(nxt.ids())[:2] == ["old0", "new0"]
    assert nxt[-1] == item("old9", 18)
    assert last[0] == item("old9", 0)
    assert last.json == as_json(list(last))


def test_items_kept_in_a_chunk_cut_by_the_limit_are_still_found() -> None:
    """A limit that cuts a chunk short leaves its kept items readable by id, and the
    list can be replaced again."""
    items = ItemList.from_items([item(f"k{n}", n) for n in range(CHUNK_ITEMS + 10)], rank=by_rank)

    cut = items.replaced({}, limit=CHUNK_ITEMS + 5)
    again = cut.replaced({"k260": (item("k260", -1), -1.0)})

    assert cut.item_json("k260") == render_item(item("k260", 260))
    assert cut.get("k256") == item("k256", 256)
    assert cut.find("k259") == render_item(item("k259", 259))
    assert list(again.ids())[:2] == ["k260", "k0"]
    assert again.json == as_json(list(again))


def test_changes_since_another_list_compares_item_by_item() -> None:
    """Between lists not built from each other, `changes_since` compares their items."""
    old = ItemList.from_items([item("a"), item("b"), item("c")])
    new = ItemList.from_items([item("b", version=1), item("c"), item("d")])

    delta = new.changes_since(old)

    assert delta.base is old
    assert (delta.added, delta.updated, delta.removed) == (("d",), ("b",), ("a",))


def test_the_remembered_delta_is_only_used_against_its_own_base() -> None:
    """A list's delta is from the list it was built from; against any other list the
    changes are compared afresh."""
    first = ItemList.from_items([item("a")])
    second = first.replaced({"b": (item("b"), 0.0)})
    third = second.replaced({"c": (item("c"), 0.0)})

    assert third.changes_since(second).added == ("c",)
    assert set(third.changes_since(first).added) == {"b", "c"}


# --- reading ----------------------------------------------------------------------------


def test_json_is_the_compact_utf8_array() -> None:
    """`json` is valid JSON, compact, and keeps non-ASCII text as UTF-8."""
    items = ItemList.from_items([{"id": "é", "title": "Café ☕", "n": [1, 2]}])

    assert items.json == '[{"id":"é","title":"Café ☕","n":[1,2]}]'.encode()
    assert json.loads(items.json) == [{"id": "é", "title": "Café ☕", "n": [1, 2]}]


def test_item_json_and_get_read_one_item_by_its_id() -> None:
    """`item_json` gives an item's bytes, `get` the item; integer ids are found as strings."""
    items = ItemList.from_items([{"id": 7, "name": "Research"}, {"id": "c-1"}])

    assert items.item_json("7") == b'{"id":7,"name":"Research"}'
    assert items.get("7") == {"id": 7, "name": "Research"}
    assert items.get("c-1") == {"id": "c-1"}
    assert items.item_json("missing") is None
    assert items.get("missing") is None
    assert items.original_id("7") == 7
    assert items.original_id("c-1") == "c-1"


def test_find_looks_up_by_id_and_then_by_an_alias() -> None:
    """`find` takes the id first and falls back to an alias field such as a slug."""
    items = ItemList.from_items(
        [{"id": 1, "slug": "research"}, {"id": 2, "slug": "1"}, {"id": 3, "slug": True}]
    )

    assert items.find("research", aliases=("slug",)) == b'{"id":1,"slug":"research"}'
    assert items.find("1", aliases=("slug",)) == b'{"id":1,"slug":"research"}'
    assert items.find("research") is None
    assert items.find("True", aliases=("slug",)) is None
    assert items.find("nowhere", aliases=("slug",)) is None


def test_has_ids_and_rank_of_tell_what_is_held() -> None:
    """`has`, `ids` and `rank_of` answer from the index, in list order."""
    items = ItemList.from_items([item("b", 5), item("a", 3)], rank=by_rank)

    assert list(items.ids()) == ["a", "b"]
    assert items.has("a")
    assert not items.has("c")
    assert items.rank_of("b") == 5.0
    assert items.rank_of("c") is None


def test_it_behaves_as_a_read_only_sequence() -> None:
    """Length, indexing from either end, slices with steps and iteration all parse items."""
    plain = [item(f"k{n}", version=n) for n in range(CHUNK_ITEMS + 10)]
    items = ItemList.from_items(plain)

    assert len(items) == len(plain)
    assert items[0] == plain[0]
    assert items[CHUNK_ITEMS] == plain[CHUNK_ITEMS]
    assert items[-1] == plain[-1]
    assert items[3:9:2] == plain[3:9:2]
    assert items[::-50] == plain[::-50]
    assert list(items) == plain
    assert item("k5", version=5) in items
    with pytest.raises(IndexError):
        items[len(plain)]
    with pytest.raises(IndexError):
        items[-len(plain) - 1]


def test_items_read_out_are_fresh_dicts() -> None:
    """Changing an item read from the list does not change the list."""
    items = ItemList.from_items([{"id": "a", "tags": ["x"]}])

    read = items[0]
    read["tags"].append("y")
    next(iter(items))["id"] = "b"

    assert items.get("a") == {"id": "a", "tags": ["x"]}
    assert items.json == b'[{"id":"a","tags":["x"]}]'


def test_equality_with_lists_and_other_item_lists() -> None:
    """An `ItemList` equals another holding the same JSON, and a list of the same items."""
    one = ItemList.from_items([{"id": 1, "a": 1}])
    same = ItemList.from_items([{"id": 1, "a": 1}])
    other = ItemList.from_items([{"id": 1, "a": 2}])

    assert one == same
    assert hash(one) == hash(same)
    assert one == [{"id": 1, "a": 1}]
    assert one != other
    assert one != [{"id": 1, "a": 2}]
    assert one != "not a list"
    assert EMPTY == []


def test_subset_takes_the_present_ids_in_the_lists_order() -> None:
    """`subset` keeps the ids asked for that exist, in the list's own order."""
    items = ItemList.from_items([item("a", 1), item("b", 2), item("c", 3)], rank=by_rank)

    picked = items.subset(["c", "zz", "a"])

    assert list(picked) == [item("a", 1), item("c", 3)]
    assert picked.json == as_json([item("a", 1), item("c", 3)])
    assert picked.first_rank is None
    assert items.subset([]) == []


def test_a_subset_of_every_id_is_the_list_itself() -> None:
    """Asking for every item gives the list as it is, whatever the order asked in."""
    items = ItemList.from_items([item(f"k{n}") for n in range(CHUNK_ITEMS + 3)])

    assert items.subset(reversed(list(items.ids()))) is items
    assert (
        items.subset(["k0", "k0", *[f"k{n}" for n in range(1, CHUNK_ITEMS + 2)]])
        == list(items)[: CHUNK_ITEMS + 2]
    )


def test_ranks_by_id_gives_every_items_rank() -> None:
    """A ranked list's ranks by id; a list without ranks has none to give."""
    ranked = ItemList.from_items([item(f"k{n}", -n) for n in range(CHUNK_ITEMS + 3)], rank=by_rank)

    ranks = ranked.ranks_by_id()

    assert ranks == {f"k{n}": float(-n) for n in range(CHUNK_ITEMS + 3)}
    assert list(ranks) == list(ranked.ids())
    assert ItemList.from_items([item("a")]).ranks_by_id() == {}


# --- what enters ------------------------------------------------------------------------


def test_secrets_never_enter_a_list() -> None:
    """A `password` (and other secrets) in an item are gone, built or replaced."""
    built = ItemList.from_items([{"id": "a", "title": "t", "password": "hunter2"}])
    replaced = built.replaced(
        {"b": ({"id": "b", "meta": {"apiKey": "sk-canary", "ok": 1}, "password": "pw"}, 0.0)}
    )

    assert built.get("a") == {"id": "a", "title": "t"}
    assert replaced.get("b") == {"id": "b", "meta": {"ok": 1}}
    for data in (built.json, replaced.json):
        assert b"hunter2" not in data
        assert b"sk-canary" not in data
        assert b"password" not in data


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_refused(value: float) -> None:
    """`NaN` and `Infinity` are not JSON: an item holding one cannot enter."""
    with pytest.raises(ValueError, match="JSON compliant"):
        render_item({"id": "a", "x": value})
    with pytest.raises(ValueError, match="JSON compliant"):
        ItemList.from_items([{"id": "a", "x": value}])
    with pytest.raises(ValueError, match="JSON compliant"):
        EMPTY.replaced({"a": ({"id": "a", "x": value}, 0.0)})


def test_a_lone_surrogate_becomes_a_question_mark() -> None:
    """A `\\ud800` an upstream sent cannot be UTF-8: it is served as `?`."""
    raw = json.loads('{"id": "a", "title": "x\\ud800y"}')

    items = ItemList.from_items([raw])

    assert render_item(raw) == b'{"id":"a","title":"x?y"}'
    assert items.get("a") == {"id": "a", "title": "x?y"}
    items.json.decode("utf-8")  # valid UTF-8 throughout


# --- pydantic ---------------------------------------------------------------------------


class Holder(BaseModel):
    items: ItemList


def test_a_pydantic_field_takes_a_list_of_dicts_or_an_item_list() -> None:
    """A field of type `ItemList` coerces a list of items and keeps an `ItemList` as is."""
    given_list = ItemList.from_items([{"id": 1}])

    from_dicts = Holder.model_validate({"items": [{"id": 1, "password": "x"}]})
    as_is = Holder(items=given_list)
    from_json = Holder.model_validate_json(b'{"items":[{"id":1}]}')

    assert isinstance(from_dicts.items, ItemList)
    assert from_dicts.items == [{"id": 1}]
    assert as_is.items is given_list
    assert from_json.items == given_list


def test_only_a_document_said_to_be_redacted_skips_the_redaction() -> None:
    """A replica's shared snapshot (validated with `REDACTED_CONTEXT`) was redacted by
    the holder; anything else is redacted again, the context of another key or value
    included."""
    raw = b'{"items":[{"id":1,"password":"x"}]}'

    trusted = Holder.model_validate_json(raw, context={REDACTED_CONTEXT: True})
    assert trusted.items == [{"id": 1, "password": "x"}]
    for context in (None, {}, {REDACTED_CONTEXT: "yes"}, {"other": True}):
        assert Holder.model_validate_json(raw, context=context).items == [{"id": 1}]


@pytest.mark.parametrize("bad", ["text", [1, 2], [{"no": "id"}], None, {"id": 1}])
def test_a_pydantic_field_refuses_what_is_not_a_list_of_items(bad: Any) -> None:
    """Anything but a list of objects with ids is a validation error."""
    with pytest.raises(ValidationError):
        Holder.model_validate({"items": bad})


def test_a_pydantic_field_serialises_as_its_list() -> None:
    """`model_dump` gives the items, `model_dump_json` the same JSON as the list holds."""
    holder = Holder(items=ItemList.from_items([{"id": "a", "n": 1}, {"id": "b"}]))

    assert holder.model_dump() == {"items": [{"id": "a", "n": 1}, {"id": "b"}]}
    assert json.loads(holder.model_dump_json()) == {"items": json.loads(holder.items.json)}


@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_the_json_schema_is_an_array_of_objects(mode: Any) -> None:
    """Both schemas of an `ItemList` say: an array of objects."""
    schema = TypeAdapter(ItemList).json_schema(mode=mode)

    assert schema == {"type": "array", "items": {"type": "object", "additionalProperties": True}}


def test_coerce_is_the_identity_on_an_item_list() -> None:
    """`coerce` keeps an `ItemList` and builds one from a tuple of dicts."""
    items = ItemList.from_items([{"id": 1}])

    assert ItemList.coerce(items) is items
    assert ItemList.coerce(({"id": 2},)) == [{"id": 2}]
    with pytest.raises(ValueError, match="list of objects"):
        ItemList.coerce("nope")


def test_repr_tells_size_not_content() -> None:
    """The repr names the count and the bytes, never the items (they may be large)."""
    items = ItemList.from_items([{"id": "secret-looking-title"}])

    assert repr(items) == f"ItemList(1 items, {len(items.json)} bytes)"
