"""The SQLite file behind the object store: objects, users and a few settings.

One file, `xenmem.db`, in WAL mode so that `xenmem user add` can write while the server
reads. Records are stored as JSON text; datetimes are tagged (see `encode_record`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = [
    "DB_FILENAME",
    "StoredObject",
    "connect",
    "decode_record",
    "encode_record",
    "get_setting",
    "load_objects",
    "private_dir",
    "set_setting",
    "write_objects",
]

DB_FILENAME = "xenmem.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    class TEXT NOT NULL,
    ref TEXT NOT NULL,
    created INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (class, ref)
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# A record's datetimes survive the JSON round trip as {"$datetime": iso-8601}.
_DATETIME_TAG = "$datetime"


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    """One row of `objects`: a record and the generations it was created and last changed at."""

    cls: str
    ref: str
    created: int
    generation: int
    record: dict[str, object]


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) if needed; a directory made here is 0700."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is masked by the umask


def _private_file(path: Path) -> None:
    """Create `path` if needed; make it readable and writable by its owner only (0600)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) `state_dir/xenmem.db` in WAL mode, readable by its owner only.

    SQLite creates the -wal and -shm files with the database file's permissions.
    """
    private_dir(state_dir)
    db = state_dir / DB_FILENAME
    for path in (db, db.with_name(DB_FILENAME + "-wal"), db.with_name(DB_FILENAME + "-shm")):
        if path == db or path.exists():
            _private_file(path)
    conn = sqlite3.connect(db, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode never corrupts the file; a power cut may lose the last commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


def _tag_datetime(value: object) -> object:
    if isinstance(value, datetime):
        return {_DATETIME_TAG: value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _untag_datetime(obj: dict[str, object]) -> object:
    if len(obj) == 1 and isinstance(iso := obj.get(_DATETIME_TAG), str):
        return datetime.fromisoformat(iso)
    return obj


def encode_record(record: Mapping[str, object]) -> str:
    return json.dumps(record, default=_tag_datetime, separators=(",", ":"))


def decode_record(text: str) -> dict[str, object]:
    record: dict[str, object] = json.loads(text, object_hook=_untag_datetime)
    return record


def load_objects(conn: sqlite3.Connection) -> Iterator[StoredObject]:
    rows = conn.execute("SELECT class, ref, created, generation, record FROM objects")
    for cls, ref, created, generation, text in rows:
        yield StoredObject(
            cls=cls, ref=ref, created=created, generation=generation, record=decode_record(text)
        )


def write_objects(
    conn: sqlite3.Connection,
    upserts: Iterable[StoredObject],
    deletes: Iterable[tuple[str, str]],
    generation: int,
) -> None:
    """Apply one store commit in one SQLite transaction (all or nothing)."""
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR REPLACE INTO objects (class, ref, created, generation, record) "
            "VALUES (?, ?, ?, ?, ?)",
            [(o.cls, o.ref, o.created, o.generation, encode_record(o.record)) for o in upserts],
        )
        conn.executemany("DELETE FROM objects WHERE class = ? AND ref = ?", list(deletes))
        _set_setting(conn, "generation", str(generation))


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))


def set_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    with conn:
        _set_setting(conn, key, value)
