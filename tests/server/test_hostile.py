"""Hostile input over raw HTTP: the error xapi gives, the server keeps serving, and a failed
call changes nothing (protocol §1-3, §5)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.serving import PATIENCE_S, ROOT_PASSWORD, RunningServer


class Raw:
    """One keep-alive HTTP connection, as both clients use."""

    def __init__(self, server: RunningServer) -> None:
        url = urlsplit(server.url)
        self.conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=PATIENCE_S)

    def post(
        self, path: str, body: bytes, content_type: str = "text/xml"
    ) -> tuple[int, str, bytes]:
        self.conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = self.conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()

    def json(self, payload: object) -> dict[str, object]:
        status, content_type, body = self.post(
            "/jsonrpc", json.dumps(payload).encode(), "application/json"
        )
        assert (status, content_type) == (200, "application/json")
        result: dict[str, object] = json.loads(body)
        return result

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def raw(server: RunningServer) -> Iterator[Raw]:
    connection = Raw(server)
    yield connection
    connection.close()


@pytest.fixture
def session(raw: Raw) -> str:
    reply = raw.json(
        {
            "id": 0,
            "jsonrpc": "2.0",
            "method": "session.login_with_password",
            "params": ["root", ROOT_PASSWORD],
        }
    )
    ref = reply["result"]
    assert isinstance(ref, str)
    return ref


def _xml_call(method: str, *params: str) -> bytes:
    values = "".join(f"<param><value>{p}</value></param>" for p in params)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>{method}'
        f"</methodName><params>{values}</params></methodCall>"
    ).encode()


def _still_serving(raw: Raw, session: str) -> None:
    reply = raw.json({"id": 9, "jsonrpc": "2.0", "method": "pool.get_all", "params": [session]})
    assert isinstance(reply["result"], list)


@pytest.mark.parametrize(
    "body",
    [
        b"<methodCall><methodName>x",
        b"not xml at all",
        b"",
        b"<methodCall><params/></methodCall>",
        b"<methodCall><methodName>pool.get_all</methodName><params><param><value><int>x</int>"
        b"</value></param></params></methodCall>",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><methodCall><methodName>&b;'
        b"</methodName></methodCall>",
    ],
)
def test_unreadable_xml_is_http_500_and_the_server_keeps_serving(
    raw: Raw, session: str, body: bytes
) -> None:
    status, content_type, _ = raw.post("/", body)
    assert status == 500
    assert content_type == "text/html"
    _still_serving(raw, session)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"jsonrpc": "2.0", "method": "pool.get_all", "params": []}',
        b'{"jsonrpc": "2.0", "id": 1, "params": []}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "pool.get_all"}',
        b'{"id": null, "method": "pool.get_all", "params": []}',
    ],
)
def test_unreadable_json_is_http_500(raw: Raw, session: str, body: bytes) -> None:
    status, _, _ = raw.post("/jsonrpc", body, "application/json")
    assert status == 500
    _still_serving(raw, session)


def test_oversized_body_is_refused(raw: Raw, session: str, server: RunningServer) -> None:
    status, _, _ = raw.post("/", b"<" + b"x" * (9 * 2**20))
    assert status == 413
    fresh = Raw(server)
    _still_serving(fresh, session)
    fresh.close()


def _vm(raw: Raw, session: str) -> str:
    reply = raw.json({"id": 1, "method": "VM.get_all", "params": [session]})
    vms = reply["result"]
    assert isinstance(vms, list)
    return str(vms[0])


def test_wrong_types_and_int64_overflow_are_internal_errors(raw: Raw, session: str) -> None:
    vm = _vm(raw, session)
    before = raw.json({"id": 1, "method": "VM.get_record", "params": [session, vm]})["result"]
    bad_calls: list[list[object]] = [
        ["VM.set_name_label", session, vm, 42],
        ["VM.set_user_version", session, vm, "twelve"],
        ["VM.set_user_version", session, vm, 2**63],
        ["VM.set_user_version", session, vm, str(-(2**63) - 1)],
        ["VM.set_is_a_template", session, vm, "yes"],
        ["VM.set_other_config", session, vm, ["not", "a", "map"]],
        ["VM.set_actions_after_crash", session, vm, "explode"],
        ["event.from", session, ["vm"], "", "soon"],
    ]
    for method, *params in bad_calls:
        reply = raw.json({"id": 2, "method": method, "params": params})
        error = reply["error"]
        assert isinstance(error, list)
        assert error[0] == "INTERNAL_ERROR", (method, error)
        assert len(error) == 2
    after = raw.json({"id": 3, "method": "VM.get_record", "params": [session, vm]})["result"]
    assert after == before


def test_int64_limits_are_accepted(raw: Raw, session: str) -> None:
    vm = _vm(raw, session)
    for value in (2**63 - 1, str(-(2**63))):
        reply = raw.json({"id": 1, "method": "VM.set_user_version", "params": [session, vm, value]})
        assert reply["error"] is None
    status, _, body = raw.post("/", _xml_call("VM.get_user_version", session, vm))
    assert status == 200
    assert b"<value>-9223372036854775808</value>" in body
    raw.json({"id": 1, "method": "VM.set_user_version", "params": [session, vm, 1]})


def test_a_failed_create_changes_nothing(raw: Raw, session: str) -> None:
    before = raw.json({"id": 1, "method": "VM.get_all", "params": [session]})["result"]
    reply = raw.json(
        {"id": 2, "method": "VM.create", "params": [session, {"name_label": "incomplete"}]}
    )
    error = reply["error"]
    assert isinstance(error, list)
    assert error[:2] == ["INTERNAL_ERROR", "missing field memory_static_max in VM record"]
    token = raw.json({"id": 3, "method": "event.from", "params": [session, ["*"], "", 0.0]})
    after = raw.json({"id": 4, "method": "VM.get_all", "params": [session]})["result"]
    assert after == before
    assert isinstance(token["result"], dict)


def test_xml_rpc_path_routing_and_content_types(raw: Raw, session: str) -> None:
    for path in ("/", "/RPC2", "/xmlrpc", "/anything/else"):
        status, content_type, body = raw.post(path, _xml_call("pool.get_all", session))
        assert (status, content_type) == (200, "text/xml")
        assert body.startswith(
            b'<?xml version="1.0"?><methodResponse><params><param><value>'
            b"<struct><member><name>Status</name><value>Success</value>"
        )
        assert b"\n" not in body


def test_json_rpc_envelopes(raw: Raw, session: str) -> None:
    v1 = raw.json({"id": "a2", "method": "pool.get_all", "params": ["OpaqueRef:dead"]})
    assert v1 == {"result": None, "error": ["SESSION_INVALID", "OpaqueRef:dead"], "id": "a2"}
    v2 = raw.json({"id": 0, "jsonrpc": "2.0", "method": "VM.get_record", "params": [session]})
    assert v2 == {
        "jsonrpc": "2.0",
        "id": 0,
        "error": {
            "code": 1,
            "message": "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "data": ["VM.get_record", "1", "0"],
        },
    }
    ok = raw.json({"id": 5, "jsonrpc": "2.0", "method": "system.listMethods", "params": []})
    assert "error" not in ok
    assert isinstance(ok["result"], list)
    assert "event.from" in ok["result"]


def test_text_xml_cannot_carry_reaches_xml_rpc_clients_replaced(
    raw: Raw, session: str, server: RunningServer
) -> None:
    """JSON-RPC can store code points XML 1.0 cannot carry at all (found by the fuzzer):
    JSON clients read them back exactly, XML-RPC clients as U+FFFD, and every XML-RPC
    answer stays well-formed."""
    vm = _vm(raw, session)
    key, value = "odd\x01key", "nul\x00 surrogate\ud800 fine\t"
    added = raw.json(
        {"id": 2, "method": "VM.add_to_other_config", "params": [session, vm, key, value]}
    )
    assert added["error"] is None
    try:
        exact = raw.json({"id": 3, "method": "VM.get_other_config", "params": [session, vm]})
        assert isinstance(exact["result"], dict)
        assert exact["result"][key] == value
        sdk = server.session()
        other_config = sdk.xenapi.VM.get_record(vm)["other_config"]
        assert other_config["odd\ufffdkey"] == "nul\ufffd surrogate\ufffd fine\t"
        assert vm in sdk.xenapi.VM.get_all_records()
    finally:
        raw.json({"id": 4, "method": "VM.remove_from_other_config", "params": [session, vm, key]})
