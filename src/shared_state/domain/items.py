"""`ItemList`: a workspace or conversation list held as the JSON it is served as.

Ten thousand conversations are the state's bulk. Held as Python dicts they cost five to
ten times their JSON, and every sync would re-validate, re-compare and re-render all of
them. An `ItemList` holds the list's JSON once (`json`, what `GET /conversations` sends)
and where each item starts in it; an item becomes a dict only when somebody asks for it.
Lists that share items share their bytes: `replaced()` builds the next list from the
previous one's unchanged spans plus what changed, and remembers that delta, so a sync that
changed one conversation among 10,000 costs what one conversation costs.

Every item entered through `from_items` or `replaced` has passed `redact` (secrets out)
and has an `id` (the upstream's own, or one the adapter derived): the type is the proof.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from shared_state.domain.redact import redact

Item = dict[str, Any]
"""A workspace or conversation: the upstream's own fields, plus an `id`."""

ItemId = str | int

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def render_item(item: Mapping[str, Any]) -> bytes:
    """An item's JSON as the state serves it: compact UTF-8, no NaN. A lone surrogate
    (a `\\ud800` escape an upstream sent) cannot be UTF-8: it becomes `?`."""
    return _encode(item).encode("utf-8", "replace")


@dataclass(frozen=True)
class ItemDelta:
    """How a list differs from the list it was built from: keys added, updated, removed."""

    base: ItemList
    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]


class ItemList(Sequence[Item]):
    """An immutable list of items with unique ids, kept as its JSON array.

    Indexing and iteration parse items on demand (fresh dicts: change them freely);
    `json` is the array, `item_json(key)` one item's bytes, `find(key)` one item by its
    id or by another field (a workspace's `slug`). Keys are the ids as
    strings, as they arrive in a URL. A list built with `ranks` stays sorted by them
    (ascending): `replaced` puts a changed item where its rank says.
    """

    __slots__ = (
        "_alias_index",
        "_delta",
        "_index",
        "_json",
        "_keys",
        "_lengths",
        "_ranks",
        "_starts",
    )

    def __init__(
        self,
        parts: Iterable[bytes | memoryview],
        keys: list[str],
        lengths: array[int],
        *,
        ranks: array[float] | None = None,
        delta: ItemDelta | None = None,
    ) -> None:
        self._json = b"[" + b",".join(parts) + b"]"
        self._keys = keys  # in list order
        self._lengths = lengths  # of each item's JSON, plus one for its comma
        # Item i is json[starts[i] : starts[i + 1] - 1]; all of this is C-level work.
        self._starts = array("q", accumulate(lengths, initial=1))
        self._index = dict(zip(keys, range(len(keys)), strict=True))
        self._ranks = ranks
        self._alias_index: dict[tuple[str, ...], dict[str, int]] = {}
        self._delta = delta

    # --- building --------------------------------------------------------------------

    @classmethod
    def from_items(
        cls,
        items: Iterable[Mapping[str, Any]],
        *,
        rank: Callable[[Mapping[str, Any]], float] | None = None,
    ) -> ItemList:
        """A list of `items` (each with an `id`), secrets removed; a repeated id keeps
        its first item. With `rank`, sorted by it (a stable sort)."""
        entries: dict[str, tuple[bytes, float]] = {}
        for item in items:
            key = key_of(item)
            if key not in entries:
                entries[key] = (render_item(redact(item)), rank(item) if rank else 0.0)
        keys = list(entries)
        if rank is not None:
            keys.sort(key=lambda key: entries[key][1])
        parts = [entries[key][0] for key in keys]
        return cls(
            parts,
            keys,
            array("q", [len(part) + 1 for part in parts]),
            ranks=array("d", [entries[key][1] for key in keys]) if rank else None,
        )

    def replaced(
        self,
        changed: Mapping[str, tuple[Mapping[str, Any], float]],
        *,
        removed: Iterable[str] = (),
        limit: int | None = None,
    ) -> ItemList:
        """This list with the items in `changed` (key -> (item, rank); new or updated,
        secrets removed here) put in, the keys in `removed` taken out, and at most `limit`
        items kept (the first). Unchanged items keep their bytes: the work is C-level
        copying plus what changed. The result remembers its delta from this list, which
        `changes_since` reads instead of comparing; nothing changed gives `self`.

        In a list without ranks an updated item keeps its place and a new one is appended.
        """
        rendered = {
            key: (render_item(redact(item)), rank)
            for key, (item, rank) in changed.items()
            if key not in self._index or self._span(self._index[key]) != render_item(redact(item))
        }
        gone = {self._index[key] for key in removed if key in self._index}
        gone.update(self._index[key] for key in rendered if key in self._index)
        if not rendered and not gone and (limit is None or len(self) <= limit):
            return self
        # Walk the old positions once: an insertion goes before the position it names, a
        # gone position is skipped, and everything between is copied as one run.
        events = sorted(
            [
                (self._insertion_point(key, rank), 0, rank, order, key)
                for order, (key, (_, rank)) in enumerate(rendered.items())
            ]
            + [(point, 1, 0.0, 0, "") for point in gone]
        )
        parts: list[bytes | memoryview] = []
        keys: list[str] = []
        lengths = array("q")
        ranks = array("d") if self._ranks is not None else None
        position = 0
        for point, is_gone, rank, _, key in events:
            if point > position:
                self._copy_run(position, point, parts, keys, lengths, ranks)
                position = point
            if is_gone:
                position = point + 1
                continue
            part = rendered[key][0]
            parts.append(part)
            keys.append(key)
            lengths.append(len(part) + 1)
            if ranks is not None:
                ranks.append(rank)
        if position < len(self):
            self._copy_run(position, len(self), parts, keys, lengths, ranks)
        dropped: tuple[str, ...] = ()
        if limit is not None and len(keys) > limit:
            dropped = tuple(keys[limit:])
            parts, keys, lengths = self._truncated(parts, keys, lengths, limit)
            ranks = ranks[:limit] if ranks is not None else None
        result = ItemList(parts, keys, lengths, ranks=ranks)
        kept = result._index
        result._delta = ItemDelta(
            base=self,
            added=tuple(k for k in rendered if k not in self._index and k in kept),
            updated=tuple(k for k in rendered if k in self._index and k in kept),
            removed=tuple(k for k in (*removed, *dropped) if k in self._index and k not in kept),
        )
        return result

    def _insertion_point(self, key: str, rank: float) -> int:
        """Before which of this list's positions a changed item goes."""
        if self._ranks is not None:
            return bisect_left(self._ranks, rank)
        return self._index.get(key, len(self))

    def _copy_run(
        self,
        start: int,
        stop: int,
        parts: list[bytes | memoryview],
        keys: list[str],
        lengths: array[int],
        ranks: array[float] | None,
    ) -> None:
        """Items start..stop-1 of this list, appended as one slice of its bytes."""
        parts.append(memoryview(self._json)[self._starts[start] : self._starts[stop] - 1])
        keys.extend(self._keys[start:stop])
        lengths.extend(self._lengths[start:stop])
        if ranks is not None and self._ranks is not None:
            ranks.extend(self._ranks[start:stop])

    @staticmethod
    def _truncated(
        parts: list[bytes | memoryview], keys: list[str], lengths: array[int], limit: int
    ) -> tuple[list[bytes | memoryview], list[str], array[int]]:
        joined = b",".join(parts)
        size = max(sum(lengths[:limit]) - 1, 0)
        return [joined[:size]] if limit else [], keys[:limit], lengths[:limit]

    @classmethod
    def ranked(cls) -> ItemList:
        """An empty list that keeps its items sorted by rank."""
        return cls([], [], array("q"), ranks=array("d"))

    # --- reading ---------------------------------------------------------------------

    @property
    def ranks(self) -> Sequence[float]:
        """The items' ranks, ascending (empty for a list without ranks)."""
        return self._ranks if self._ranks is not None else ()

    @property
    def json(self) -> bytes:
        """The JSON array, as `GET` serves it."""
        return self._json

    def ids(self) -> Iterator[str]:
        """The items' ids as strings, in order."""
        return iter(self._index)

    def has(self, key: str) -> bool:
        """Whether an item has this id."""
        return key in self._index

    def rank_of(self, key: str) -> float | None:
        """An item's rank, or None (not in the list, or a list without ranks)."""
        position = self._index.get(key)
        if position is None or self._ranks is None:
            return None
        return self._ranks[position]

    def subset(self, keys: Iterable[str]) -> ItemList:
        """The items with these ids (present ones), in the order given, sharing bytes."""
        positions = [self._index[key] for key in keys if key in self._index]
        return ItemList(
            [self._span(position) for position in positions],
            [self._keys[position] for position in positions],
            array("q", [self._lengths[position] for position in positions]),
        )

    def item_json(self, key: str) -> bytes | None:
        """One item's JSON by id, or None."""
        position = self._index.get(key)
        return None if position is None else bytes(self._span(position))

    def find(self, key: str, *, aliases: tuple[str, ...] = ()) -> bytes | None:
        """One item's JSON by id, or else by one of the `aliases` fields (a workspace's
        `slug`), or None."""
        position = self._index.get(key)
        if position is None and aliases:
            position = self._alias_positions(aliases).get(key)
        return None if position is None else bytes(self._span(position))

    def get(self, key: str) -> Item | None:
        """One item by id, parsed, or None."""
        rendered = self.item_json(key)
        return None if rendered is None else json.loads(rendered)

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, position: int) -> Item: ...
    @overload
    def __getitem__(self, position: slice) -> list[Item]: ...
    def __getitem__(self, position: int | slice) -> Item | list[Item]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError("ItemList index out of range")
        return json.loads(bytes(self._span(position)))  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Item]:
        for position in range(len(self)):
            yield json.loads(bytes(self._span(position)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ItemList):
            return self is other or self._json == other._json
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"ItemList({len(self)} items, {len(self._json)} bytes)"

    def changes_since(self, old: ItemList) -> ItemDelta:
        """Keys added, updated and removed since `old`: the remembered delta when this
        list was built from `old`, else a comparison item by item."""
        if self._delta is not None and self._delta.base is old:
            return self._delta
        added, updated = [], []
        for key, position in self._index.items():
            before = old._index.get(key)
            if before is None:
                added.append(key)
            elif old._span(before) != self._span(position):
                updated.append(key)
        removed = tuple(key for key in old._index if key not in self._index)
        return ItemDelta(base=old, added=tuple(added), updated=tuple(updated), removed=removed)

    def original_id(self, key: str) -> ItemId:
        """The id as the item holds it (`1`, not `"1"`)."""
        position = self._index[key]
        span = self._span(position)
        if span[:7].tobytes() == b'{"id":"':
            return key  # the common case, told without parsing
        value = json.loads(bytes(span)).get("id")
        return value if isinstance(value, str | int) else key

    # --- internals -------------------------------------------------------------------

    def _span(self, position: int) -> memoryview:
        return memoryview(self._json)[self._starts[position] : self._starts[position + 1] - 1]

    def _alias_positions(self, aliases: tuple[str, ...]) -> dict[str, int]:
        index = self._alias_index.get(aliases)
        if index is None:
            index = {}
            for position, item in enumerate(self):
                for alias in aliases:
                    value = item.get(alias)
                    if isinstance(value, str | int) and not isinstance(value, bool):
                        index.setdefault(str(value), position)
            self._alias_index[aliases] = index
        return index

    # --- pydantic --------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.coerce,
            serialization=core_schema.plain_serializer_function_ser_schema(
                list, when_used="always"
            ),
            json_schema_input_schema=core_schema.list_schema(
                core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema())
            ),
        )

    @classmethod
    def coerce(cls, value: Any) -> ItemList:
        """An `ItemList` as it is, or one built from a list of item dicts (each with an
        `id`): how stored snapshots and tests give lists."""
        if isinstance(value, ItemList):
            return value
        if isinstance(value, list | tuple) and all(isinstance(item, dict) for item in value):
            return cls.from_items(value)
        raise ValueError("expected a list of objects, each with an id")


EMPTY = ItemList.from_items(())


def key_of(item: Mapping[str, Any]) -> str:
    """An item's key: its `id` as a string (`1` and `"1"` are one key)."""
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("every item needs an id (a string or an integer)")
    return str(value)
