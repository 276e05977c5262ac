"""Where and as whom xe connects, and the logged-in XenAPI session.

xe's defaults (xe-cli newcli.ml): server 127.0.0.1, user root, password "null"; plain
HTTP to the local host or with `--nossl`, HTTPS (certificate not verified, as xe's
stunnel) otherwise; port 80 or 443 unless given. `-pwf FILE` names a file whose first
line is the user name and whose second line is the password.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import XenAPI

from xenmem.cli.xe.errors import USAGE_HINT, XeFailure
from xenmem.cli.xe.invocation import (
    Invocation,
    UsageError,
    is_true,
    parse_invocation,
    read_defaults_file,
)

__all__ = ["Settings", "connected", "invocation_from_environment", "resolve_settings"]

_LOCAL_SERVERS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, kw_only=True)
class Settings:
    server: str = "127.0.0.1"
    port: int | None = None
    username: str = "root"
    password: str = "null"
    ssl: bool = False

    @property
    def url(self) -> str:
        port = self.port if self.port is not None else (443 if self.ssl else 80)
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"{'https' if self.ssl else 'http'}://{host}:{port}/"


def invocation_from_environment(argv: Sequence[str]) -> Invocation:
    """`argv` over `XE_EXTRA_ARGS` over `~/.xe`, as xe reads them."""
    try:
        return parse_invocation(
            argv,
            extra_args=os.environ.get("XE_EXTRA_ARGS", ""),
            defaults=read_defaults_file(Path.home() / ".xe"),
        )
    except UsageError as error:
        raise XeFailure(str(error)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise XeFailure("Port number must be an integer (0-65535)")
    return port


def _password_file(path: str) -> tuple[str, str]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        raise XeFailure(f"Error opening password file '{path}'") from None
    if len(lines) < 2:
        raise XeFailure(
            "Error: password file format: expecting username on the first line, "
            "password on the second line"
        )
    return lines[0], lines[1]


def resolve_settings(connection: Mapping[str, str]) -> Settings:
    """Settings from the connection keys of an invocation (server, port, username, ...)."""
    server = connection.get("server", Settings.server)
    username = connection.get("username", Settings.username)
    password = connection.get("password", Settings.password)
    if "passwordfile" in connection:
        username, password = _password_file(connection["passwordfile"])
    nossl = is_true(connection.get("nossl", "false"))
    return Settings(
        server=server,
        port=_port(connection["port"]) if "port" in connection else None,
        username=username,
        password=password,
        ssl=not nossl and server not in _LOCAL_SERVERS,
    )


def _login(session: Any, settings: Settings) -> None:
    try:
        session.xenapi.login_with_password(settings.username, settings.password, "1.0", "xe")
    except XenAPI.Failure as failure:
        if failure.details[:1] != ["SESSION_AUTHENTICATION_FAILED"]:
            raise
        if settings.username == "":
            raise XeFailure("Username/password must be specified") from None
        raise XeFailure(f"Authentication failed\n{USAGE_HINT}") from None
    except socket.gaierror:
        raise XeFailure(f"Host '{settings.server}' not found.") from None
    except OSError:
        raise XeFailure(
            "Unable to contact server. Please check server and port settings."
        ) from None


@contextmanager
def connected(settings: Settings) -> Iterator[Any]:
    """A logged-in SDK session (`.xenapi` is the API), logged out and closed afterwards."""
    session = XenAPI.Session(settings.url, ignore_ssl=True)
    try:
        _login(session, settings)
        try:
            yield session
        finally:
            # A failed logout must not hide the command's own outcome.
            with contextlib.suppress(OSError, XenAPI.Failure):
                session.xenapi.session.logout()
    finally:
        session("close")()
