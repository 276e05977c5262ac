"""Local users: a name, a role and a salted scrypt hash of the password.

Read from the database at every login (never cached), so `xenmem user add` takes effect
on a running server. Every change of the users table counts up `users_generation`, which
a running server compares against to notice changes made by another process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

__all__ = [
    "User",
    "find_user",
    "hash_password",
    "set_user",
    "users_generation",
    "verify_login",
    "verify_password",
]

_GENERATION_KEY = "users_generation"

# scrypt cost: 16 MiB of memory and ~50 ms per hash, which makes guessing expensive.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16


@dataclass(frozen=True, kw_only=True)
class User:
    name: str
    role: str
    salt: bytes
    password_hash: bytes


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P
    )


def verify_password(user: User, password: str) -> bool:
    return hmac.compare_digest(hash_password(password, user.salt), user.password_hash)


# Stands in for an unknown user: its hash matches no password, and computing it takes as
# long as a real user's, so the time of a failed login does not tell whether the user exists.
_NOBODY = User(
    name="", role="", salt=secrets.token_bytes(_SALT_BYTES), password_hash=secrets.token_bytes(64)
)


def verify_login(user: User | None, password: str) -> bool:
    """Whether `password` is the user's; an unknown user (None) costs a hash too."""
    return verify_password(_NOBODY if user is None else user, password) and user is not None


def set_user(conn: sqlite3.Connection, name: str, role: str, password: str) -> None:
    """Create the user, or replace its role and password."""
    salt = secrets.token_bytes(_SALT_BYTES)
    password_hash = hash_password(password, salt)
    with conn:
        conn.execute("BEGIN")
        conn.execute(
            "INSERT OR REPLACE INTO users (name, role, salt, hash) VALUES (?, ?, ?, ?)",
            (name, role, salt, password_hash),
        )
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, '1') ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (_GENERATION_KEY,),
        )


def users_generation(conn: sqlite3.Connection) -> int:
    """How many times the users table has changed (0: never)."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (_GENERATION_KEY,)).fetchone()
    return 0 if row is None else int(row[0])


def find_user(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute(
        "SELECT name, role, salt, hash FROM users WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    return User(name=row[0], role=row[1], salt=bytes(row[2]), password_hash=bytes(row[3]))
