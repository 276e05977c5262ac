"""How xe connects (~/.xe, XE_EXTRA_ARGS, -pwf) and how it reports bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.xe.conftest import Xe, failure
from tests.serving import ROOT_PASSWORD
from xenmem.cli.xe.connection import Settings, resolve_settings
from xenmem.cli.xe.errors import XeFailure


def test_settings_defaults_and_transport() -> None:
    assert resolve_settings({}) == Settings()
    assert Settings().url == "http://127.0.0.1:80/"
    remote = resolve_settings({"server": "pool1", "port": "8443"})
    assert (remote.ssl, remote.url) == (True, "https://pool1:8443/")
    assert resolve_settings({"server": "pool1"}).url == "https://pool1:443/"
    assert resolve_settings({"server": "pool1", "nossl": "true"}).url == "http://pool1:80/"
    assert resolve_settings({"server": "fe80::1", "nossl": "true"}).url == "http://[fe80::1]:80/"


def test_password_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("admin\nsecret\n")
    settings = resolve_settings({"passwordfile": str(path), "password": "ignored"})
    assert (settings.username, settings.password) == ("admin", "secret")
    path.write_text("admin\n")
    with pytest.raises(XeFailure, match="expecting username on the first line"):
        resolve_settings({"passwordfile": str(path)})
    with pytest.raises(XeFailure, match="Error opening password file"):
        resolve_settings({"passwordfile": str(tmp_path / "missing")})
    with pytest.raises(XeFailure, match="Port number must be an integer"):
        resolve_settings({"port": "http"})


def test_connection_from_the_defaults_file_and_environment(xe: Xe, tmp_path: Path) -> None:
    port = xe.server.port
    (xe.home / ".xe").write_text(f"server=127.0.0.1\nport={port}\nusername=root\npassword=bad\n")
    try:
        assert "Authentication failed" in failure(xe.bare("host-list"))
        extra = f"password={ROOT_PASSWORD}"
        assert xe.bare("host-list", "--minimal", XE_EXTRA_ARGS=extra).returncode == 0
        pwf = tmp_path / "pwf"
        pwf.write_text(f"root\n{ROOT_PASSWORD}\n")
        assert xe.bare("host-list", "-pwf", str(pwf)).returncode == 0
    finally:
        (xe.home / ".xe").unlink()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vm-frobnicate"], "Unknown command: vm-frobnicate\nFor usage run: 'xe help'\n"),
        (
            ["vm-memory-limits-set", "static-min=1GiB"],
            "Required parameter not found: static-max\nFor usage run: 'xe help'\n",
        ),
        (
            ["vm-memory-set", "memory=4XB"],
            "Error: Failed to parse field 'memory': expecting an integer "
            "(possibly with suffix KiB, MiB, GiB, TiB), got '4XB'\n",
        ),
        (
            ["vm-memory-dynamic-range-set", "min=-1", "max=2GiB"],
            "Error: Failed to parse field 'min': expecting an integer "
            "(possibly with suffix KiB, MiB, GiB, TiB), got '-1'\n",
        ),
        (
            ["vm-memory-shadow-multiplier-set", "multiplier=lots"],
            "Error: Failed to parse parameter 'multiplier': expecting a float\n",
        ),
        (["vm-list", "stray"], "Unexpected argument 'stray': parameters take the form key=value\n"),
    ],
)
def test_bad_input_gets_xe_messages(xe: Xe, args: list[str], message: str) -> None:
    assert failure(xe(*args)) == message


def test_unreachable_server_and_bad_password(xe: Xe) -> None:
    assert failure(xe.bare("-p", "1", "host-list")) == (
        "Unable to contact server. Please check server and port settings.\n"
    )
    port = str(xe.server.port)
    assert failure(xe.bare("-p", port, "-pw", "wrong", "host-list")) == (
        "Authentication failed\nFor usage run: 'xe help'\n"
    )


def test_help(xe: Xe) -> None:
    listing = xe.bare("help")
    assert listing.returncode == 0
    assert "  vm-memory-limits-set\n" in listing.stdout
    one = xe.bare("help", "vm-memory-limits-set")
    assert "reqd params     : static-min, static-max, dynamic-min, dynamic-max" in one.stdout
    assert failure(xe.bare("help", "vm-nothing")).startswith("Unknown command: vm-nothing")
