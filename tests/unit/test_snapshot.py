"""The snapshot file: round trips, no secrets, atomic writes, and restoring a StateManager."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared_state.domain.models import (
    LocalSettings,
    SourceName,
    SourceStatus,
    UiValues,
    UpstreamSnapshot,
    VectorDbValues,
)
from shared_state.errors import UpstreamUnavailable
from shared_state.state.manager import StateManager, render_stored
from shared_state.state.snapshot import SnapshotStore, SourceRecord, StoredState
from tests.fakes import make_snapshot

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
BOTH: list[SourceName] = ["anythingllm", "librechat"]

CANARIES = (b"hunter2", b"sk-canary", b"rt-canary", b"pw-canary", b"tok-canary", b"totp-canary")


def secret_laden_anythingllm() -> UpstreamSnapshot:
    """An AnythingLLM snapshot whose adapter passed secrets in every object section."""
    return make_snapshot(
        user={"id": 1, "username": "ada", "password": "hunter2", "apiKey": "sk-canary"},
        vector_db=VectorDbValues(
            provider="pgvector",
            settings={
                "PGVectorConnectionString": "postgres://u:pw-canary@db/x",
                "PGVectorTableName": "docs",
            },
        ),
        workspaces=[{"id": 1, "slug": "research", "OpenAiKey": "sk-canary-2"}],
    )


def secret_laden_librechat() -> UpstreamSnapshot:
    """A LibreChat snapshot whose user and conversations carry tokens and secrets."""
    return UpstreamSnapshot(
        user={
            "id": "665f",
            "email": "ada@example.com",
            "refreshToken": "rt-canary",
            "totpSecret": "totp-canary",
            "backupCodes": ["totp-canary-code"],
        },
        ui=UiValues(theme="dark"),
        conversations=[{"id": "c-1", "title": "Plan", "meta": {"AuthToken": "tok-canary"}}],
    )


def stored_state(version: int) -> StoredState:
    """A stored state at `version` with one ok source, one disabled, and local settings."""
    return StoredState(
        version=version,
        sync_timestamp=NOW,
        sources={
            "anythingllm": SourceRecord(
                status=SourceStatus(status="ok", last_success_at=NOW, last_attempt_at=NOW),
                data=make_snapshot(),
            ),
            "librechat": SourceRecord(status=SourceStatus(status="disabled")),
        },
        local=LocalSettings(ui=UiValues(theme="dark")),
    )


async def save(store: SnapshotStore, stored: StoredState) -> None:
    """Save `stored` the way the StateManager does: its version and its JSON document."""
    await store.save(stored.version, render_stored(stored))


def file_bytes(path: Path) -> bytes:
    """The snapshot file's bytes (a sync helper: tests read small local files directly)."""
    return path.read_bytes()


def is_directory(path: Path) -> bool:
    return path.is_dir()


def entries(directory: Path) -> list[str]:
    """The names in `directory`."""
    return sorted(entry.name for entry in directory.iterdir())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the snapshot file goes, in an otherwise empty directory."""
    return tmp_path / "state.json"


@pytest.fixture
def store(path: Path) -> SnapshotStore:
    return SnapshotStore(path)


async def synced_manager(path: Path, configured: list[SourceName] = BOTH) -> StateManager:
    """A manager with a store at `path` after a sync in which both upstreams answered."""
    manager = StateManager(configured=configured, store=SnapshotStore(path))
    await manager.record_sync(
        {"anythingllm": secret_laden_anythingllm(), "librechat": secret_laden_librechat()}, NOW
    )
    return manager


# --- the store -----------------------------------------------------------------------


async def test_save_then_load_round_trips(store: SnapshotStore) -> None:
    """What `save` writes, `load` reads back equal."""
    original = stored_state(4)

    await save(store, original)

    assert store.load() == original


async def test_a_second_store_on_the_same_file_reads_the_save(
    store: SnapshotStore, path: Path
) -> None:
    """A new store (a restarted process) loads what the previous one saved."""
    await save(store, stored_state(4))

    loaded = SnapshotStore(path).load()

    assert loaded is not None
    assert loaded.version == 4
    assert loaded.local.ui.theme == "dark"


def test_missing_file_loads_as_none(store: SnapshotStore) -> None:
    """Without a snapshot file there is nothing to load."""
    assert store.load() is None


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary"),
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"version": "seven", "sources": {}}', id="wrong-types"),
        pytest.param(b'{"hello": "world"}', id="foreign-object"),
        pytest.param(
            json.dumps({"version": 3, "user": None, "workspaces": [], "sources": {}}).encode(),
            id="a-state-not-a-snapshot",
        ),
    ],
)
def test_corrupt_or_foreign_file_is_kept_aside_and_logged(
    path: Path, store: SnapshotStore, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is not a snapshot is moved to `.corrupt-<time>` with a warning, never
    raised and never left where the next save would overwrite it."""
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="shared_state.state.snapshot"):
        loaded = store.load()

    assert loaded is None
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert str(path) in caplog.text
    (aside,) = path.parent.glob(f"{path.name}.corrupt-*")
    assert file_bytes(aside) == content
    assert str(aside) in caplog.text
    assert not path.exists()


@pytest.mark.parametrize("cut", [0.5, 0.99])
async def test_truncated_file_falls_back_to_the_previous_save_and_a_higher_version(
    path: Path, store: SnapshotStore, cut: float
) -> None:
    """A snapshot cut short (a full disk, a crash elsewhere) is kept aside; the previous
    save's data is served and the version continues above the highest ever saved."""
    await save(store, stored_state(6))
    await save(store, stored_state(7))
    content = file_bytes(path)
    path.write_bytes(content[: int(len(content) * cut)])

    loaded = SnapshotStore(path).load()

    assert loaded is not None
    assert loaded.version == 7
    assert loaded.sources["anythingllm"].data == make_snapshot()
    assert len(list(path.parent.glob(f"{path.name}.corrupt-*"))) == 1


async def test_version_survives_when_no_snapshot_data_does(path: Path) -> None:
    """With the file and the previous save both corrupt, the restored manager still
    continues above the highest version ever saved (it restores no data)."""
    store = SnapshotStore(path)
    for version in range(1, 9):
        await save(store, stored_state(version))
    path.write_bytes(b"{trunc")
    path.with_name(f"{path.name}.prev").write_bytes(b"")

    manager = StateManager(configured=BOTH, store=SnapshotStore(path))
    manager.restore()

    assert manager.state.version == 9
    assert manager.state.workspaces == []
    assert len(list(path.parent.glob("*.corrupt-*"))) == 2


async def test_two_corruptions_in_the_same_second_keep_both_files(
    path: Path, store: SnapshotStore
) -> None:
    """A second corrupt file moved aside never replaces the first one kept aside."""
    for content in (b"{first", b"{second"):
        path.write_bytes(content)
        assert SnapshotStore(path).load() is None

    kept = sorted(file_bytes(aside) for aside in path.parent.glob(f"{path.name}.corrupt-*"))
    assert kept == [b"{first", b"{second"]


async def test_a_corrupt_version_file_is_ignored_with_a_warning(
    path: Path, store: SnapshotStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A version file that holds no number is ignored; the snapshot's own version counts."""
    await save(store, stored_state(4))
    path.with_name(f"{path.name}.version").write_bytes(b"\x00garbage")

    with caplog.at_level(logging.WARNING, logger="shared_state.state.snapshot"):
        loaded = SnapshotStore(path).load()

    assert loaded is not None
    assert loaded.version == 4
    assert "version file" in caplog.text


async def test_the_version_file_never_goes_backwards(path: Path) -> None:
    """A store that saves a lower version (a process started without restoring) leaves
    the version file at the highest version ever saved."""
    await save(SnapshotStore(path), stored_state(9))

    await save(SnapshotStore(path), stored_state(2))

    assert path.with_name(f"{path.name}.version").read_text().strip() == "9"
    loaded = SnapshotStore(path).load()
    assert loaded is not None
    assert loaded.version == 9


def test_snapshot_of_another_format_loads_as_none(path: Path, store: SnapshotStore) -> None:
    """A file written in another snapshot format (another `format` number) is not loaded."""
    payload = json.loads(stored_state(4).model_dump_json(by_alias=True))
    payload["format"] = 99
    path.write_text(json.dumps(payload))

    assert store.load() is None


def test_unreadable_path_loads_as_none_and_is_logged(
    path: Path, store: SnapshotStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A path that cannot be read (here a directory) is logged and loads as None."""
    path.mkdir()

    with caplog.at_level(logging.WARNING, logger="shared_state.state.snapshot"):
        loaded = store.load()

    assert loaded is None
    assert "cannot read snapshot file" in caplog.text


async def test_save_leaves_no_temporary_file_behind(
    store: SnapshotStore, path: Path, tmp_path: Path
) -> None:
    """After saves the directory holds the snapshot file and its two companions (the
    version file and the previous save), and nothing else."""
    for version in (1, 2, 3):
        await save(store, stored_state(version))

    assert entries(tmp_path) == [path.name, f"{path.name}.prev", f"{path.name}.version"]


async def test_save_replaces_the_previous_file_whole(store: SnapshotStore, path: Path) -> None:
    """A later save replaces the file's content completely."""
    await save(store, stored_state(1))

    await save(store, stored_state(2))

    assert json.loads(file_bytes(path))["version"] == 2


async def test_save_creates_missing_directories(tmp_path: Path) -> None:
    """The snapshot file's directory is created when it does not exist."""
    store = SnapshotStore(tmp_path / "a" / "b" / "state.json")

    await save(store, stored_state(1))

    loaded = store.load()
    assert loaded is not None
    assert loaded.version == 1


async def test_failed_write_is_logged_and_leaves_no_temporary_file(
    path: Path, store: SnapshotStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A save that cannot replace the file (a directory is in the way) logs and cleans up."""
    os.mkdir(path)  # a directory where the file should go

    with caplog.at_level(logging.WARNING, logger="shared_state.state.snapshot"):
        await save(store, stored_state(1))

    assert "cannot write snapshot file" in caplog.text
    assert entries(tmp_path) == [path.name, f"{path.name}.version"]
    assert is_directory(path)


async def test_older_save_does_not_overwrite_a_newer_one(store: SnapshotStore) -> None:
    """Saving version 5 after version 6 keeps version 6 on disk."""
    await save(store, stored_state(6))

    await save(store, stored_state(5))

    loaded = store.load()
    assert loaded is not None
    assert loaded.version == 6


async def test_stored_state_never_holds_secrets(store: SnapshotStore, path: Path) -> None:
    """Secrets that an upstream sent never reach the file's bytes."""
    await save(
        store,
        StoredState(
            version=1,
            sources={
                "anythingllm": SourceRecord(
                    status=SourceStatus(status="ok"), data=secret_laden_anythingllm()
                ),
                "librechat": SourceRecord(
                    status=SourceStatus(status="ok"), data=secret_laden_librechat()
                ),
            },
        ),
    )

    content = file_bytes(path)
    assert b"research" in content  # the data is there, only the secrets are not
    for canary in CANARIES:
        assert canary not in content


# --- a StateManager with a store --------------------------------------------------------


async def test_manager_saves_each_new_version_without_secrets(path: Path) -> None:
    """A change is written to the snapshot file at once, with no secret in it."""
    manager = await synced_manager(path)

    content = file_bytes(path)
    assert json.loads(content)["version"] == manager.state.version == 1
    assert b"PGVectorTableName" in content
    for canary in CANARIES:
        assert canary not in content


async def test_restored_manager_serves_the_saved_data(path: Path) -> None:
    """After a restart with a snapshot file, the last good data is served at once."""
    before = await synced_manager(path)

    manager = StateManager(configured=BOTH, store=SnapshotStore(path))
    restored = manager.restore()

    assert restored is True
    assert manager.is_ready is True
    assert manager.state.user == before.state.user
    assert manager.state.settings == before.state.settings
    assert manager.state.workspaces == before.state.workspaces
    assert manager.state.conversations == before.state.conversations
    assert manager.state.sync_timestamp == NOW


async def test_restored_manager_continues_the_version(path: Path) -> None:
    """The restored version is the saved one plus one, so it never goes backwards."""
    before = await synced_manager(path)
    await before.record_sync({"librechat": UpstreamUnavailable("librechat", "timeout")}, LATER)
    assert before.state.version == 2

    manager = StateManager(configured=BOTH, store=SnapshotStore(path))
    manager.restore()

    assert manager.state.version == 3


async def test_restored_sources_are_stale_when_configured_and_disabled_otherwise(
    path: Path,
) -> None:
    """Restored configured sources are `stale`; a source no longer configured is `disabled`."""
    await synced_manager(path)

    manager = StateManager(configured=["anythingllm"], store=SnapshotStore(path))
    manager.restore()

    anythingllm = manager.state.sources["anythingllm"]
    assert anythingllm.status == "stale"
    assert anythingllm.last_success_at == NOW
    assert manager.state.sources["librechat"].status == "disabled"
    assert manager.state.conversations == []
    assert manager.state.workspaces == [{"id": 1, "slug": "research"}]


async def test_restored_manager_keeps_local_settings(path: Path) -> None:
    """Settings the service keeps itself survive a restart."""
    before = StateManager(configured=["anythingllm"], store=SnapshotStore(path))
    await before.record_write("ui", {}, {"theme": "dark"}, NOW)

    manager = StateManager(configured=["anythingllm"], store=SnapshotStore(path))
    manager.restore()

    assert manager.local_settings.ui.theme == "dark"
    assert manager.state.settings.ui.theme == "dark"


async def test_first_sync_after_restore_moves_the_version_on(path: Path) -> None:
    """A sync after a restore with the same data moves only the statuses, one version up."""
    await synced_manager(path)
    manager = StateManager(configured=BOTH, store=SnapshotStore(path))
    manager.restore()

    commit = await manager.record_sync(
        {"anythingllm": secret_laden_anythingllm(), "librechat": secret_laden_librechat()}, LATER
    )

    assert commit.changed == ["sources"]
    assert manager.state.version == 3
    assert {name: s.status for name, s in manager.state.sources.items()} == {
        "anythingllm": "ok",
        "librechat": "ok",
    }
    assert json.loads(file_bytes(path))["version"] == 3


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(None, id="no-file"),
        pytest.param(b"{broken", id="corrupt-file"),
    ],
)
def test_manager_without_a_usable_snapshot_starts_fresh(path: Path, setup: bytes | None) -> None:
    """Without a usable snapshot, restore reports nothing and the manager starts at version 0."""
    if setup is not None:
        path.write_bytes(setup)
    manager = StateManager(configured=BOTH, store=SnapshotStore(path))

    restored = manager.restore()

    assert restored is False
    assert manager.state.version == 0
    assert manager.is_ready is False
    assert {name: s.status for name, s in manager.state.sources.items()} == {
        "anythingllm": "pending",
        "librechat": "pending",
    }


def test_manager_without_a_store_restores_nothing() -> None:
    """A manager with no snapshot store has nothing to restore."""
    manager = StateManager(configured=BOTH)

    assert manager.restore() is False
    assert manager.is_ready is False


async def test_write_is_saved_with_the_new_values(path: Path) -> None:
    """A recorded write reaches the snapshot file with its new version."""
    manager = await synced_manager(path)

    await manager.record_write("llm", {"anythingllm": {"model": "gpt-5"}}, {}, LATER)

    saved: dict[str, Any] = json.loads(file_bytes(path))
    assert saved["version"] == 2
    assert saved["sources"]["anythingllm"]["data"]["llm"]["model"] == "gpt-5"
