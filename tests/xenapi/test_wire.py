"""XML-RPC and JSON-RPC codecs against the spec's example payloads (protocol §9)."""

from __future__ import annotations

import xmlrpc.client as stdlib
from datetime import UTC, datetime

import pytest

from xenmem.errors import XenAPIError
from xenmem.xenapi import jsonrpc, xmlrpc
from xenmem.xenapi.model import decode_arg
from xenmem.xenapi.types import BOOL, DATETIME, FLOAT, INT, STRING, ApiType, Enum, Map, Set

S = "OpaqueRef:7f1c2a9e-3b4d-4e5f-8a6b-9c0d1e2f3a4b"
HEADER = '<?xml version="1.0"?><methodResponse><params><param>'
FOOTER = "</param></params></methodResponse>"


def test_parse_python_sdk_style_login() -> None:
    body = (
        b"<?xml version='1.0'?>\n<methodCall>\n<methodName>session.login_with_password"
        b"</methodName>\n<params>\n<param>\n<value><string>root</string></value>\n</param>\n"
        b"<param>\n<value><string>secret</string></value>\n</param>\n<param>\n<value><int>7"
        b"</int></value>\n</param>\n<param>\n<value><nil/></value>\n</param>\n</params>\n"
        b"</methodCall>\n"
    )
    assert xmlrpc.parse_call(body) == ("session.login_with_password", ["root", "secret", 7, None])


def test_parse_xo_style_values() -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>event.from</methodName>'
        f"<params><param><value>{S}</value></param><param><value><array><data><value>VM"
        "</value><value/></data></array></value></param><param><value>4294967296</value>"
        "</param><param><value><double>60.1</double></value></param><param><value><struct>"
        "<member><name>k</name><value><boolean>1</boolean></value></member></struct></value>"
        "</param><param><value><dateTime.iso8601>20250319T04:16:24Z</dateTime.iso8601></value>"
        "</param><param><value><array><data /></array></value></param></params></methodCall>"
    ).encode()
    method, params = xmlrpc.parse_call(body)
    assert method == "event.from"
    assert params == [
        S,
        ["VM", ""],
        "4294967296",
        60.1,
        {"k": True},
        datetime(2025, 3, 19, 4, 16, 24, tzinfo=UTC),
        [],
    ]


def test_render_success_exactly_as_x3() -> None:
    assert xmlrpc.render_success(4294967296).decode() == (
        HEADER + "<value><struct><member><name>Status</name><value>Success</value></member>"
        "<member><name>Value</name><value>4294967296</value></member></struct></value>" + FOOTER
    )


def test_render_failure_exactly_as_x2() -> None:
    description = ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]
    assert xmlrpc.render_failure(description).decode() == (
        HEADER + "<value><struct><member><name>Status</name><value>Failure</value></member>"
        "<member><name>ErrorDescription</name><value><array><data><value>"
        "SESSION_AUTHENTICATION_FAILED</value><value>root</value><value>Authentication failure"
        "</value></data></array></value></member></struct></value>" + FOOTER
    )


def test_value_forms() -> None:
    assert xmlrpc.render_value("") == "<value></value>"
    assert xmlrpc.render_value("a<b&c") == "<value>a&lt;b&amp;c</value>"
    assert xmlrpc.render_value(True) == "<value><boolean>1</boolean></value>"
    assert xmlrpc.render_value(xmlrpc.Int32(2)) == "<value><i4>2</i4></value>"
    assert xmlrpc.render_value(1.0) == "<value><double>1</double></value>"
    assert xmlrpc.render_value(1.5) == "<value><double>1.5</double></value>"
    assert xmlrpc.render_value(datetime(2025, 1, 1, tzinfo=UTC)) == (
        "<value><dateTime.iso8601>20250101T00:00:00Z</dateTime.iso8601></value>"
    )
    assert xmlrpc.render_value({"m": []}) == (
        "<value><struct><member><name>m</name><value><array><data></data></array></value>"
        "</member></struct></value>"
    )
    assert xmlrpc.render_raw(["a"]).decode() == (
        HEADER + "<value><array><data><value>a</value></data></array></value>" + FOOTER
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<x/>",
        b"<methodCall/>",
        b"<methodCall><methodName>a</methodName><params><param>"
        b"<value><boolean>2</boolean></value></param></params></methodCall>",
        b"<methodCall><methodName>a</methodName><params><param><value><foo/></value></param>"
        b"</params></methodCall>",
    ],
)
def test_unreadable_xml(body: bytes) -> None:
    with pytest.raises(xmlrpc.XmlRpcParseError):
        xmlrpc.parse_call(body)


def test_json_envelopes_exactly_as_j1_j2_j5() -> None:
    v2 = jsonrpc.parse_call(b'{"id":0,"jsonrpc":"2.0","method":"m","params":["root","secret"]}')
    assert v2.v2
    assert jsonrpc.render_success(v2, S) == f'{{"jsonrpc":"2.0","result":"{S}","id":0}}'.encode()
    assert jsonrpc.render_failure(v2, ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]) == (
        b'{"jsonrpc":"2.0","error":{"code":1,"message":"HANDLE_INVALID","data":["VM",'
        b'"OpaqueRef:nope"]},"id":0}'
    )
    assert jsonrpc.render_failure(v2, ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]) == (
        b'{"jsonrpc":"2.0","error":{"code":1,"message":"MEMORY_CONSTRAINT_VIOLATION_ORDER",'
        b'"data":[]},"id":0}'
    )
    v1 = jsonrpc.parse_call(b'{"method":"m","params":[],"id":"a1"}')
    assert not v1.v2
    assert jsonrpc.render_success(v1, S) == f'{{"result":"{S}","error":null,"id":"a1"}}'.encode()
    assert jsonrpc.render_failure(v1, ["SESSION_INVALID", "x"]) == (
        b'{"result":null,"error":["SESSION_INVALID","x"],"id":"a1"}'
    )
    when = datetime(2025, 1, 1, tzinfo=UTC)
    assert b'"20250101T00:00:00Z"' in jsonrpc.render_success(v1, {"t": when})


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"method":"m","params":[]}',
        b'{"method":"m","params":[],"id":true}',
        b'{"method":"m","params":{},"id":1}',
        b'{"params":[],"id":1}',
    ],
)
def test_unreadable_json(body: bytes) -> None:
    with pytest.raises(jsonrpc.JsonRpcParseError):
        jsonrpc.parse_call(body)


@pytest.mark.parametrize(
    ("t", "value", "expected"),
    [
        (INT, "4294967296", 4294967296),
        (INT, " 12 ", 12),
        (INT, -5, -5),
        (INT, str(2**63 - 1), 2**63 - 1),
        (FLOAT, "60.1", 60.1),
        (FLOAT, 3, 3.0),
        (BOOL, False, False),
        (STRING, "", ""),
        (DATETIME, "2025-03-19T04:16:24", datetime(2025, 3, 19, 4, 16, 24, tzinfo=UTC)),
        (Enum("e", ("Halted", "Running")), "running", "Running"),
        (Set(INT), ["1", 2], [1, 2]),
        (Map(STRING, INT), {"a": "1"}, {"a": 1}),
    ],
)
def test_lenient_decoding(t: ApiType, value: object, expected: object) -> None:
    assert decode_arg(t, value, "x") == expected


@pytest.mark.parametrize(
    ("t", "value"),
    [
        (INT, 2**63),
        (INT, str(-(2**63) - 1)),
        (INT, "1.5"),
        (INT, True),
        (INT, 1.0),
        (FLOAT, "nan"),
        (FLOAT, float("inf")),
        (FLOAT, True),
        (BOOL, "true"),
        (STRING, 3),
        (DATETIME, "yesterday"),
        (Enum("e", ("a",)), "b"),
        (Set(INT), "1"),
        (Map(STRING, INT), []),
    ],
)
def test_undecodable_arguments_are_internal_errors(t: ApiType, value: object) -> None:
    with pytest.raises(XenAPIError) as info:
        decode_arg(t, value, "x")
    assert info.value.code == "INTERNAL_ERROR"
    assert len(info.value.params) == 1


def test_xml_rpc_replaces_what_xml_cannot_carry() -> None:
    body = xmlrpc.render_success({"a\x01b": ["x\x00y", "\ud800", "\ufffe", "tab\tnl\n", "é𝄞"]})
    ((parsed,), _) = stdlib.loads(body.decode())
    assert isinstance(parsed, dict)
    assert parsed["Value"] == {"a\ufffdb": ["x\ufffdy", "\ufffd", "\ufffd", "tab\tnl\n", "é𝄞"]}
    ((failure,), _) = stdlib.loads(xmlrpc.render_failure(["CODE", "\x07"]).decode())
    assert isinstance(failure, dict)
    assert failure["ErrorDescription"] == ["CODE", "\ufffd"]
