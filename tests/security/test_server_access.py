"""Access over the wire, against `xenmem serve --tls`: HTTPS with the official SDK, private
state files, idle and logged-out sessions, slow failed logins, a read-only user's RBAC, and
no password in clear anywhere."""

from __future__ import annotations

import hashlib
import http.client
import ssl
import stat
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import XenAPI

from tests.serving import ROOT_PASSWORD, RawXenAPI, RunningServer, start_server
from xenmem.db.sqlite import connect
from xenmem.xenapi.tls import CERT_FILENAME, KEY_FILENAME, self_signed

READ_ONLY_PASSWORD = "ro-Secret-42"
NO_PERMISSION = "No permission in user session"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("tls") / "state", "--tls")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "user",
            "add",
            "ro",
            "--role",
            "read-only",
            "--state",
            str(running.state_dir),
        ],
        input=READ_ONLY_PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    yield running
    running.stop()


_CLOSERS: list[Callable[[], None]] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for close in _CLOSERS:
        close()
    _CLOSERS.clear()


def _proxy(server: RunningServer) -> RawXenAPI:
    """A raw XML-RPC client that accepts the self-signed certificate."""
    context = ssl._create_unverified_context()
    raw = RawXenAPI(xmlrpc.client.ServerProxy(server.url, context=context))
    _CLOSERS.append(raw.close)
    return raw


def _anonymous(server: RunningServer) -> Any:
    session = XenAPI.Session(server.url, ignore_ssl=True)
    _CLOSERS.append(session("close"))
    return session


def _sdk(server: RunningServer, user: str = "root", password: str = ROOT_PASSWORD) -> Any:
    session = _anonymous(server)
    session.xenapi.login_with_password(user, password, "1.0", "xenmem-tests")
    return session


def _failure(call: Callable[..., object], *args: object) -> list[str]:
    with pytest.raises(XenAPI.Failure) as raised:
        call(*args)
    return list(raised.value.details)


def test_the_sdk_connects_over_https_with_ignore_ssl(tls_server: RunningServer) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    session = _sdk(tls_server)
    host = session.xenapi.host.get_all()[0]
    assert int(session.xenapi.host.compute_free_memory(host)) > 0
    session.xenapi.session.logout()
    # The certificate is self-signed: a verifying client refuses it.
    verifying = xmlrpc.client.ServerProxy(tls_server.url)
    _CLOSERS.append(verifying("close"))
    with pytest.raises(ssl.SSLCertVerificationError):
        verifying.system.listMethods()


def test_state_files_are_readable_by_their_owner_only(tls_server: RunningServer) -> None:
    state = tls_server.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = {str(p.relative_to(state)): stat.S_IMODE(p.stat().st_mode) for p in state.rglob("*")}
    for name in ("xenmem.db", "xenmem.db-wal", "xenmem.db-shm", KEY_FILENAME):
        assert files.pop(name) == 0o600, name
    assert files.pop(CERT_FILENAME) == 0o644
    assert all(mode & 0o077 == 0 for mode in files.values()), files


def test_a_given_certificate_is_served(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "pki")
    assert self_signed(tmp_path / "pki") == (cert, key)  # generated once, then reused
    running = start_server(tmp_path / "state", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        context = ssl.create_default_context(cafile=str(cert))  # verifies name and chain
        conn = http.client.HTTPSConnection("127.0.0.1", running.port, context=context)
        body = b"<methodCall><methodName>system.listMethods</methodName></methodCall>"
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        assert conn.getresponse().status == 200
        served = conn.sock.getpeercert(binary_form=True)
        conn.close()
        assert served == ssl.PEM_cert_to_DER_cert(cert.read_text())
    finally:
        running.stop()


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xenmem.cli.main",
            "serve",
            "--tls-cert",
            "x.pem",
            "--state",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr


def test_sessions_end_when_idle_and_at_logout(tmp_path: Path) -> None:
    # Whether a session in use stays alive is a matter of timing: the in-process tests
    # check it on a clock they move (test_access). Here only what holds by construction:
    # a session left alone for longer than the timeout has ended.
    server = start_server(tmp_path / "state", "--session-timeout", "1")
    try:
        # A raw client: the SDK logs in again by itself when it sees SESSION_INVALID.
        proxy = server.proxy()
        idle = proxy.session.login_with_password("root", ROOT_PASSWORD, "1.0", "t")["Value"]
        time.sleep(1.5)
        invalid = {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", idle]}
        assert proxy.pool.get_all(idle) == invalid
        active = proxy.session.login_with_password("root", ROOT_PASSWORD, "1.0", "t")["Value"]
        assert proxy.pool.get_all(active)["Status"] == "Success"
        proxy.session.logout(active)
        invalid = {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", active]}
        assert proxy.pool.get_all(active) == invalid
    finally:
        server.stop()


def test_failed_logins_are_slowed_down(tls_server: RunningServer) -> None:
    # That other clients are served meanwhile is a matter of timing over the wire; the
    # in-process tests check it by construction (test_access).
    durations: list[float] = []
    for _ in range(2):
        start = time.monotonic()
        anonymous = _anonymous(tls_server)
        with pytest.raises(XenAPI.Failure):
            anonymous.xenapi.login_with_password("root", "guess", "1.0", "t")
        durations.append(time.monotonic() - start)
    assert durations[0] >= 0.5
    assert durations[1] >= 1.0
    _sdk(tls_server).xenapi.session.logout()  # a success clears the address's record


def _memory_and_lifecycle(vm: str, host: str) -> list[tuple[str, list[object]]]:
    gib = str(2**30)
    return [
        ("VM.set_memory_dynamic_range", [vm, gib, gib]),
        ("VM.set_memory_dynamic_min", [vm, gib]),
        ("VM.set_memory_dynamic_max", [vm, gib]),
        ("VM.set_memory_static_range", [vm, gib, gib]),
        ("VM.set_memory_static_min", [vm, gib]),
        ("VM.set_memory_static_max", [vm, gib]),
        ("VM.set_memory_limits", [vm, gib, gib, gib, gib]),
        ("VM.set_memory", [vm, gib]),
        ("VM.set_memory_target_live", [vm, gib]),
        ("VM.set_HVM_shadow_multiplier", [vm, 2.0]),
        ("VM.set_shadow_multiplier_live", [vm, 2.0]),
        ("VM.set_VCPUs_max", [vm, "2"]),
        ("VM.start", [vm, False, False]),
        ("VM.start_on", [vm, host, False, False]),
        ("VM.clean_shutdown", [vm]),
        ("VM.hard_shutdown", [vm]),
        ("VM.suspend", [vm]),
        ("VM.resume", [vm, False, False]),
        ("VM.resume_on", [vm, host, False, False]),
        ("VM.pause", [vm]),
        ("VM.unpause", [vm]),
        ("VM.pool_migrate", [vm, host, {}]),
        ("VM.clone", [vm, "copy"]),
        ("VM.destroy", [vm]),
        ("VM.set_is_a_template", [vm, False]),
        ("VM.set_other_config", [vm, {"xenmem_balloon": "stuck"}]),
    ]


def test_a_read_only_user_reads_and_computes_but_never_changes_memory(
    tls_server: RunningServer,
) -> None:
    root = _sdk(tls_server)
    template = root.xenapi.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = root.xenapi.VM.clone(template, "rbac-target")
    root.xenapi.VM.set_is_a_template(vm, False)
    host = root.xenapi.host.get_all()[0]
    before = (root.xenapi.VM.get_all_records(), root.xenapi.host.get_memory_ledger(host))
    proxy = _proxy(tls_server)
    ro = proxy.session.login_with_password("ro", READ_ONLY_PASSWORD, "1.0", "t")["Value"]
    for name, args in _memory_and_lifecycle(vm, host):
        for method in (name, f"Async.{name}"):
            reply = getattr(proxy, method)(ro, *args)
            if method.startswith("Async.") and reply["ErrorDescription"][0] == "Fault":
                continue  # no async form
            assert reply == {
                "Status": "Failure",
                "ErrorDescription": ["RBAC_PERMISSION_DENIED", name.lower(), NO_PERMISSION],
            }, method
    after = (root.xenapi.VM.get_all_records(), root.xenapi.host.get_memory_ledger(host))
    assert after == before
    reader = _sdk(tls_server, "ro", READ_ONLY_PASSWORD).xenapi
    assert int(reader.host.compute_free_memory(host)) > 0
    assert int(reader.VM.compute_memory_overhead(vm)) > 0
    assert int(reader.VM.maximise_memory(vm, str(2**30), False)) > 0
    assert reader.host.get_memory_ledger(host) == before[1]
    reader.VM.assert_can_boot_here(vm, host)
    assert reader.VM.get_record(vm)["memory_static_max"] == before[0][vm]["memory_static_max"]
    assert "token" in reader.event_from(["vm"], "", 0.0)
    root.xenapi.VM.destroy(vm)


def test_passwords_are_stored_as_salted_scrypt_hashes_only(tls_server: RunningServer) -> None:
    _sdk(tls_server, "ro", READ_ONLY_PASSWORD).xenapi.session.logout()
    conn = connect(tls_server.state_dir)
    try:
        rows = conn.execute("SELECT name, salt, hash FROM users").fetchall()
    finally:
        conn.close()
    salts = {bytes(salt) for _, salt, _ in rows}
    assert len(salts) == len(rows) >= 2 and all(len(s) >= 16 for s in salts)
    passwords = {"root": ROOT_PASSWORD, "ro": READ_ONLY_PASSWORD}
    for name, salt, digest in rows:
        expected = hashlib.scrypt(
            passwords[name].encode(), salt=bytes(salt), n=2**14, r=8, p=1, dklen=64
        )
        assert bytes(digest) == expected
    for path in tls_server.state_dir.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        for password in passwords.values():
            assert password.encode() not in content, path.name
            assert password.encode("utf-16-le") not in content, path.name
    printed = "\n".join(tls_server.banner)
    assert all(p not in printed for p in passwords.values())
