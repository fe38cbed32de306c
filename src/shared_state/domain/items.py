"""`ItemList`: a workspace or conversation list held as the JSON it is served as.

Ten thousand conversations are the state's bulk. Held as Python dicts they cost five to
ten times their JSON, and every sync would re-validate, re-compare and re-render all of
them. An `ItemList` holds the list's JSON once (`json`, what `GET /conversations` sends)
and, in chunks of a few hundred items, where each item starts in it; an item becomes a
dict only when somebody asks for it.

`replaced()` builds the next list from the previous one: chunks that hold no change are
shared as they are (their bytes are copied into the new JSON in one slice each), only the
chunks that hold a change are rebuilt, and the result remembers its delta. So a sync that
changed one conversation among 10,000 costs one chunk plus one copy of the JSON, and
`changes_since` reads the delta instead of comparing.

Every item entered through `from_items` or `replaced` has passed `redact` (secrets out)
and has an `id` (the upstream's own, or one the adapter derived): the type is the proof.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import Any, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from shared_state.domain.redact import redact

Item = dict[str, Any]
"""A workspace or conversation: the upstream's own fields, plus an `id`."""

ItemId = str | int

CHUNK_ITEMS = 256
"""Items per chunk when a list is built; a rebuilt chunk that outgrows twice this splits."""

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def render_item(item: Mapping[str, Any]) -> bytes:
    """An item's JSON as the state serves it: compact UTF-8, no NaN. A lone surrogate
    (a `\\ud800` escape an upstream sent) cannot be UTF-8: it becomes `?`."""
    return _encode(item).encode("utf-8", "replace")


def key_of(item: Mapping[str, Any]) -> str:
    """An item's key: its `id` as a string (`1` and `"1"` are one key)."""
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("every item needs an id (a string or an integer)")
    return str(value)


@dataclass(frozen=True)
class ItemDelta:
    """How a list differs from the list it was built from: keys added, updated, removed."""

    base: ItemList
    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]


_Entry = tuple[str, "bytes | memoryview", float]
"""(key, the item's JSON, its rank) while a chunk is being built."""


@dataclass(frozen=True, eq=False, slots=True)
class _Chunk:
    """A run of consecutive items: their keys, where each starts relative to the run (one
    more entry: the run's length plus one), and their ranks. Shared between lists."""

    keys: tuple[str, ...]
    starts: array[int]
    ranks: array[float] | None

    @property
    def size(self) -> int:
        """The run's bytes: its items joined by commas."""
        return self.starts[-1] - 1

    @classmethod
    def build(cls, entries: Sequence[_Entry], *, is_ranked: bool) -> tuple[_Chunk, bytes]:
        """A chunk of `entries`, and its bytes."""
        chunk = cls(
            keys=tuple(key for key, _, _ in entries),
            starts=array("q", accumulate((len(part) + 1 for _, part, _ in entries), initial=0)),
            ranks=array("d", [rank for _, _, rank in entries]) if is_ranked else None,
        )
        return chunk, b",".join(part for _, part, _ in entries)


class ItemList(Sequence[Item]):
    """An immutable list of items with unique ids, kept as its JSON array.

    Indexing and iteration parse items on demand (fresh dicts: change them freely);
    `json` is the array, `item_json(key)` one item's bytes, `find(key)` one item by its id
    or by another field (a workspace's `slug`). Keys are the ids as strings, as they
    arrive in a URL. A ranked list stays sorted by rank (ascending): `replaced` puts a
    changed item where its rank says.
    """

    __slots__ = (
        "_alias_index",
        "_bases",
        "_chunk_numbers",
        "_chunks",
        "_counts",
        "_delta",
        "_index",
        "_is_ranked",
        "_json",
    )

    def __init__(
        self,
        chunks: Sequence[tuple[_Chunk, bytes | memoryview]],
        *,
        is_ranked: bool,
        index: dict[str, _Chunk] | None = None,
        delta: ItemDelta | None = None,
    ) -> None:
        """From chunks and their bytes, in order (use `from_items` or `replaced`)."""
        self._chunks = tuple(chunk for chunk, _ in chunks)
        self._json = _joined(part for _, part in chunks)
        # Where each chunk starts in the JSON, and how many items come before it.
        self._bases = array("q", accumulate((c.size + 1 for c in self._chunks), initial=1))
        self._counts = array("q", accumulate((len(c.keys) for c in self._chunks), initial=0))
        self._chunk_numbers = {id(chunk): number for number, chunk in enumerate(self._chunks)}
        if index is None:
            index = {key: chunk for chunk in self._chunks for key in chunk.keys}
        self._index = index
        self._is_ranked = is_ranked
        self._alias_index: dict[tuple[str, ...], dict[str, str]] = {}
        self._delta = delta

    # --- building --------------------------------------------------------------------

    @classmethod
    def from_items(
        cls,
        items: Iterable[Mapping[str, Any]],
        *,
        rank: Callable[[Mapping[str, Any]], float] | None = None,
        redacted: bool = False,
    ) -> ItemList:
        """A list of `items` (each with an `id`), secrets removed (unless `redacted`
        says that was done already); a repeated id keeps its first item. With `rank`, a
        ranked list, sorted by it (a stable sort)."""
        entries: dict[str, _Entry] = {}
        for item in items:
            key = key_of(item)
            if key not in entries:
                clean = item if redacted else redact(item)
                entries[key] = (key, render_item(clean), rank(item) if rank else 0.0)
        ordered = list(entries.values())
        if rank is not None:
            ordered.sort(key=lambda entry: entry[2])
        return cls(_chunked(ordered, is_ranked=rank is not None), is_ranked=rank is not None)

    @classmethod
    def ranked(cls) -> ItemList:
        """An empty list that keeps its items sorted by rank."""
        return cls((), is_ranked=True)

    def replaced(
        self,
        changed: Mapping[str, tuple[Mapping[str, Any], float]],
        *,
        removed: Iterable[str] = (),
        limit: int | None = None,
    ) -> ItemList:
        """This list with the items in `changed` (key -> (item, rank); new or updated,
        secrets removed here) put in, the keys in `removed` taken out, and at most `limit`
        items kept (the first). Only the chunks that hold a change are rebuilt; the
        result remembers its delta from this list. Nothing changed gives `self`.

        In a list without ranks an updated item keeps its place and a new one is appended.
        """
        rendered: dict[str, tuple[bytes, float]] = {}
        for key, (item, rank) in changed.items():
            part = render_item(redact(item))
            if self.item_json(key) != part:
                rendered[key] = (part, rank)
        gone = {key for key in removed if key in self._index}
        if not rendered and not gone and (limit is None or len(self) <= limit):
            return self
        # Which chunk each change lands in: its old chunk, or where its rank sorts.
        arrivals: dict[int, list[tuple[str, bytes, float]]] = {}
        for key, (part, rank) in rendered.items():
            number = self._arrival_chunk(key, rank)
            arrivals.setdefault(number, []).append((key, part, rank))
        touched = set(arrivals) | {self._chunk_numbers[id(self._index[key])] for key in gone}
        if self._is_ranked:
            touched |= {
                self._chunk_numbers[id(self._index[key])] for key in rendered if key in self._index
            }
        chunks: list[tuple[_Chunk, bytes | memoryview]] = []
        index = dict(self._index)  # a C-level copy; only rebuilt chunks' keys change
        for key in gone:
            del index[key]
        for number in range(max(len(self._chunks), 1)):
            if number not in touched:
                chunks.append((self._chunks[number], self._chunk_bytes(number)))
                continue
            entries = self._rebuilt_entries(number, arrivals.get(number, []), gone, rendered)
            for chunk, part in _chunked(entries, is_ranked=self._is_ranked, split_at=2):
                chunks.append((chunk, part))
                index.update(dict.fromkeys(chunk.keys, chunk))
        dropped: list[str] = []
        if limit is not None:
            chunks, dropped = _limited(chunks, limit)
            for key in dropped:
                index.pop(key, None)
            if dropped and chunks:
                # The last chunk kept may be a cut copy: its keys must point at it.
                last = chunks[-1][0]
                index.update(dict.fromkeys(last.keys, last))
        result = ItemList(chunks, is_ranked=self._is_ranked, index=index)
        result._delta = ItemDelta(
            base=self,
            added=tuple(k for k in rendered if k not in self._index and k in index),
            updated=tuple(k for k in rendered if k in self._index and k in index),
            removed=tuple(k for k in (*gone, *dropped) if k in self._index and k not in index),
        )
        return result

    def _arrival_chunk(self, key: str, rank: float) -> int:
        """The chunk a changed item goes into: by rank in a ranked list (before the items
        of equal rank); else its own chunk, or the last one for a new item."""
        if self._is_ranked:
            firsts = [chunk.ranks[0] for chunk in self._chunks if chunk.ranks]
            return max(bisect_left(firsts, rank) - 1, 0)
        chunk = self._index.get(key)
        return self._chunk_numbers[id(chunk)] if chunk else max(len(self._chunks) - 1, 0)

    def _rebuilt_entries(
        self,
        number: int,
        arrivals: list[tuple[str, bytes, float]],
        gone: set[str],
        rendered: Mapping[str, tuple[bytes, float]],
    ) -> list[_Entry]:
        """The entries of chunk `number` once the changes that touch it are applied."""
        entries: list[_Entry] = []
        if number < len(self._chunks):
            chunk = self._chunks[number]
            for position, key in enumerate(chunk.keys):
                if key in gone or (self._is_ranked and key in rendered):
                    continue  # removed, or moving to where its new rank sorts
                rank = chunk.ranks[position] if chunk.ranks is not None else 0.0
                part = rendered[key][0] if key in rendered else self._item_span(number, position)
                entries.append((key, part, rank))
        if not self._is_ranked:
            entries += [(k, p, r) for k, p, r in arrivals if not self.has(k)]
            return entries
        merged: list[_Entry] = []
        kept = iter(entries)
        pending = next(kept, None)
        for arrival in sorted(arrivals, key=lambda entry: entry[2]):
            while pending is not None and pending[2] < arrival[2]:
                merged.append(pending)
                pending = next(kept, None)
            merged.append(arrival)
        if pending is not None:
            merged.append(pending)
            merged.extend(kept)
        return merged

    # --- reading ---------------------------------------------------------------------

    @property
    def json(self) -> bytes:
        """The JSON array, as `GET` serves it."""
        return self._json

    @property
    def first_rank(self) -> float | None:
        """The first item's rank (the newest conversation's), or None."""
        if not self._is_ranked or not self._chunks:
            return None
        ranks = self._chunks[0].ranks
        return ranks[0] if ranks else None

    def ids(self) -> Iterator[str]:
        """The items' ids as strings, in order."""
        for chunk in self._chunks:
            yield from chunk.keys

    def ids_not_in(self, keys: Collection[str]) -> set[str]:
        """The ids of this list that are not among `keys` (a set difference, at C speed)."""
        return self._index.keys() - keys

    def has(self, key: str) -> bool:
        """Whether an item has this id."""
        return key in self._index

    def rank_of(self, key: str) -> float | None:
        """An item's rank, or None (not in the list, or a list without ranks)."""
        chunk = self._index.get(key)
        if chunk is None or chunk.ranks is None:
            return None
        return chunk.ranks[chunk.keys.index(key)]

    def item_json(self, key: str) -> bytes | None:
        """One item's JSON by id, or None."""
        span = self._span_of(key)
        return None if span is None else bytes(span)

    def find(self, key: str, *, aliases: tuple[str, ...] = ()) -> bytes | None:
        """One item's JSON by id, or else by one of the `aliases` fields (a workspace's
        `slug`), or None."""
        if key not in self._index and aliases:
            key = self._alias_keys(aliases).get(key, key)
        return self.item_json(key)

    def get(self, key: str) -> Item | None:
        """One item by id, parsed, or None."""
        rendered = self.item_json(key)
        return None if rendered is None else json.loads(rendered)

    def subset(self, keys: Iterable[str]) -> ItemList:
        """The items with these ids (present ones), in this list's order, sharing bytes.
        Only the chunks that hold one of them are looked through; all of them is `self`."""
        keys = tuple(keys)
        distinct = set(keys)
        if len(distinct) == len(self) and self._index.keys() >= distinct:
            return self  # told at C speed: a first sync's event is the whole list
        wanted: dict[int, set[str]] = {}
        for key in keys:
            chunk = self._index.get(key)
            if chunk is not None:
                wanted.setdefault(self._chunk_numbers[id(chunk)], set()).add(key)
        entries: list[_Entry] = [
            (key, self._item_span(number, position), 0.0)
            for number in sorted(wanted)
            for position, key in enumerate(self._chunks[number].keys)
            if key in wanted[number]
        ]
        return ItemList(_chunked(entries, is_ranked=False), is_ranked=False)

    def ranks_by_id(self) -> dict[str, float]:
        """Every item's rank by id (a ranked list), built at C speed: for reading a whole
        list against this one."""
        return dict(
            zip(
                chain.from_iterable(chunk.keys for chunk in self._chunks),
                chain.from_iterable(chunk.ranks or () for chunk in self._chunks),
                strict=self._is_ranked,
            )
        )

    def __len__(self) -> int:
        return self._counts[-1]

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
        number = bisect_right(self._counts, position) - 1
        span = self._item_span(number, position - self._counts[number])
        return json.loads(span.tobytes())  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Item]:
        for _, span in self._spans():
            yield json.loads(span.tobytes())

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
        if not old or not self:
            return ItemDelta(
                base=old, added=tuple(self.ids()), updated=(), removed=tuple(old.ids())
            )
        before = dict(old._spans())  # one pass over each list, no lookups by key
        added, updated = [], []
        for key, span in self._spans():
            earlier = before.get(key)
            if earlier is None:
                added.append(key)
            elif earlier != span:
                updated.append(key)
        removed = tuple(key for key in before if key not in self._index)
        return ItemDelta(base=old, added=tuple(added), updated=tuple(updated), removed=removed)

    def original_id(self, key: str) -> ItemId:
        """The id as the item holds it (`1`, not `"1"`)."""
        span = self._span_of(key)
        if span is None:
            raise KeyError(key)
        if span[:7].tobytes() == b'{"id":"':
            return key  # the common case, told without parsing
        value = json.loads(span.tobytes()).get("id")
        return value if isinstance(value, str | int) else key

    # --- internals -------------------------------------------------------------------

    def _chunk_bytes(self, number: int) -> memoryview:
        base = self._bases[number]
        return memoryview(self._json)[base : base + self._chunks[number].size]

    def _item_span(self, number: int, position: int) -> memoryview:
        base, starts = self._bases[number], self._chunks[number].starts
        return memoryview(self._json)[base + starts[position] : base + starts[position + 1] - 1]

    def _spans(self) -> Iterator[tuple[str, memoryview]]:
        """Every item's key and bytes, in order."""
        view = memoryview(self._json)
        for base, chunk in zip(self._bases, self._chunks, strict=False):
            starts = chunk.starts
            for position, key in enumerate(chunk.keys):
                yield key, view[base + starts[position] : base + starts[position + 1] - 1]

    def _span_of(self, key: str) -> memoryview | None:
        chunk = self._index.get(key)
        if chunk is None:
            return None
        return self._item_span(self._chunk_numbers[id(chunk)], chunk.keys.index(key))

    def _alias_keys(self, aliases: tuple[str, ...]) -> dict[str, str]:
        keys = self._alias_index.get(aliases)
        if keys is None:
            keys = {}
            for key, item in zip(self.ids(), self, strict=True):
                for alias in aliases:
                    value = item.get(alias)
                    if isinstance(value, str | int) and not isinstance(value, bool):
                        keys.setdefault(str(value), key)
            self._alias_index[aliases] = keys
        return keys

    # --- pydantic --------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        items = core_schema.list_schema(
            core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema())
        )
        return core_schema.with_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                list, when_used="always", return_schema=items
            ),
            json_schema_input_schema=items,
        )

    @classmethod
    def coerce(cls, value: Any, *, redacted: bool = False) -> ItemList:
        """An `ItemList` as it is, or one built from a list of item dicts (each with an
        `id`): how stored snapshots and tests give lists. `redacted`: the items are
        known to have had their secrets removed already (`from_items`)."""
        if isinstance(value, ItemList):
            return value
        if isinstance(value, list | tuple) and all(isinstance(item, dict) for item in value):
            return cls.from_items(value, redacted=redacted)
        raise ValueError("expected a list of objects, each with an id")

    @classmethod
    def _validate(cls, value: Any, info: core_schema.ValidationInfo) -> ItemList:
        context = info.context
        redacted = isinstance(context, Mapping) and context.get(REDACTED_CONTEXT) is True
        return cls.coerce(value, redacted=redacted)


def _chunked(
    entries: Sequence[_Entry], *, is_ranked: bool, split_at: int = 1
) -> list[tuple[_Chunk, bytes]]:
    """`entries` as chunks of `CHUNK_ITEMS` (one chunk while there are at most `split_at`
    times as many)."""
    if len(entries) <= CHUNK_ITEMS * split_at:
        return [_Chunk.build(entries, is_ranked=is_ranked)] if entries else []
    return [
        _Chunk.build(entries[start : start + CHUNK_ITEMS], is_ranked=is_ranked)
        for start in range(0, len(entries), CHUNK_ITEMS)
    ]


def _joined(parts: Iterable[bytes | memoryview]) -> bytes:
    """`[` parts joined by commas `]`, copied once."""
    pieces: list[bytes | memoryview] = [b"["]
    for part in parts:
        pieces += (part, b",")
    if len(pieces) > 1:
        pieces.pop()
    pieces.append(b"]")
    return b"".join(pieces)


def _limited(
    chunks: list[tuple[_Chunk, bytes | memoryview]], limit: int
) -> tuple[list[tuple[_Chunk, bytes | memoryview]], list[str]]:
    """The first `limit` items' chunks (the last one cut), and the keys left out."""
    kept: list[tuple[_Chunk, bytes | memoryview]] = []
    dropped: list[str] = []
    room = limit
    for chunk, part in chunks:
        if room >= len(chunk.keys):
            kept.append((chunk, part))
            room -= len(chunk.keys)
        elif room > 0:
            cut = _Chunk(
                keys=chunk.keys[:room],
                starts=chunk.starts[: room + 1],
                ranks=chunk.ranks[:room] if chunk.ranks is not None else None,
            )
            kept.append((cut, part[: cut.size]))
            dropped += chunk.keys[room:]
            room = 0
        else:
            dropped += chunk.keys
    return kept, dropped


EMPTY = ItemList((), is_ranked=False)

REDACTED_CONTEXT = "items_redacted"
"""A pydantic validation context key: `{REDACTED_CONTEXT: True}` says every item list in
the document was built by this service, secrets already removed (a replica's shared
snapshot, `StateManager.adopt`), so validating it skips the second redaction, the
largest part of a follower's cost per version."""
