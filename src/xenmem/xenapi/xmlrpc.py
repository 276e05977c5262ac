"""XML-RPC as xapi speaks it (protocol §2): a lenient parser, a compact xapi-style writer.

Output follows xapi's serializer: strings as bare `<value>text</value>` (XO turns
`<string></string>` into undefined), int64 as decimal text without a type tag, `<i4>` only
for `Int32` values (event.from's valid_ref_counts), doubles in shortest form (`1.0` → `1`),
no whitespace between tags (XO's parser chokes on it).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from datetime import datetime
from typing import cast
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from xenmem.xenapi.types import format_datetime, parse_datetime

__all__ = [
    "MAX_NESTING",
    "Int32",
    "NestingTooDeepError",
    "XmlRpcParseError",
    "format_float",
    "parse_call",
    "render_failure",
    "render_raw",
    "render_success",
    "render_value",
]

_HEADER = '<?xml version="1.0"?><methodResponse><params><param>'
_FOOTER = "</param></params></methodResponse>"


class Int32(int):
    """An int the wire must carry as a real XML-RPC integer, not as int64 text."""


# Arrays and structs may nest this deep in one parameter (XenAPI values nest 3 or 4 deep).
MAX_NESTING = 64
_PARSE_CHUNK = 64 * 1024


class XmlRpcParseError(ValueError):
    """The body is not an XML-RPC call xapi could read (answered with HTTP 500)."""


class NestingTooDeepError(XmlRpcParseError):
    """Arrays and structs nested deeper than the limit (answered with HTTP 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"arrays and structs nested more than {limit} levels deep")


def _text(el: ET.Element) -> str:
    return el.text or ""


def _parse_scalar(tag: str, text: str) -> object:
    try:
        match tag:
            case "string":
                return text
            case "int" | "i4" | "i8":
                return int(text.strip())
            case "boolean":
                if text.strip() not in ("0", "1"):
                    raise XmlRpcParseError(f"bad boolean {text!r}")
                return text.strip() == "1"
            case "double":
                return float(text.strip())
            case "dateTime.iso8601":
                parsed = parse_datetime(text.strip())
                if parsed is None:
                    raise XmlRpcParseError(f"bad dateTime {text!r}")
                return parsed
            case "base64":
                return base64.b64decode(text, validate=False)
            case "nil":
                return None
    except (ValueError, binascii.Error) as error:
        raise XmlRpcParseError(f"bad <{tag}>: {error}") from None
    raise XmlRpcParseError(f"unknown value type <{tag}>")


def _parse_value(el: ET.Element) -> object:
    if el.tag != "value":
        raise XmlRpcParseError(f"expected <value>, got <{el.tag}>")
    children = list(el)
    if not children:
        return _text(el)  # a bare <value>text</value> is a string (XO sends these)
    if len(children) != 1:
        raise XmlRpcParseError("a <value> holds one element")
    (child,) = children
    if child.tag == "array":
        data = child.find("data")
        return [] if data is None else [_parse_value(v) for v in data]
    if child.tag == "struct":
        members: dict[str, object] = {}
        for member in child:
            name, value = member.find("name"), member.find("value")
            if member.tag != "member" or name is None or value is None:
                raise XmlRpcParseError("bad struct member")
            members[_text(name)] = _parse_value(value)
        return members
    return _parse_scalar(child.tag, _text(child))


def _parse_tree(body: bytes, max_nesting: int) -> ET.Element:
    """The document's root element; stops reading as soon as it nests too deeply."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    # methodCall/params/param/value, then value/array/data or value/struct/member per level.
    max_elements = 4 + 3 * max_nesting + 2
    nesting = elements = 0
    root: ET.Element | None = None
    try:
        for offset in range(0, max(len(body), 1), _PARSE_CHUNK):
            parser.feed(body[offset : offset + _PARSE_CHUNK])
            # Only start and end events are asked for: (name, element) pairs.
            for event, el in cast("Iterator[tuple[str, object]]", parser.read_events()):
                if not isinstance(el, ET.Element):
                    continue
                root = el if root is None else root
                step = 1 if event == "start" else -1
                elements += step
                if el.tag in ("array", "struct"):
                    nesting += step
                if nesting > max_nesting or elements > max_elements:
                    raise NestingTooDeepError(max_nesting)
        parser.close()
    except ET.ParseError as error:
        raise XmlRpcParseError(str(error)) from None
    if root is None:
        raise XmlRpcParseError("no element")
    return root


def parse_call(body: bytes, max_nesting: int = MAX_NESTING) -> tuple[str, list[object]]:
    """(methodName, params) of a methodCall, or XmlRpcParseError (NestingTooDeepError)."""
    # No DTDs: they are never needed and entity expansion is a denial-of-service vector.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise XmlRpcParseError("DTDs are not accepted")
    root = _parse_tree(body, max_nesting)
    name = root.find("methodName")
    if root.tag != "methodCall" or name is None or not _text(name).strip():
        raise XmlRpcParseError("not a methodCall")
    params = root.find("params")
    values: list[object] = []
    for param in [] if params is None else list(params):
        value = param.find("value")
        if param.tag != "param" or value is None:
            raise XmlRpcParseError("bad <param>")
        try:
            values.append(_parse_value(value))
        except RecursionError:
            raise XmlRpcParseError("values nested too deeply") from None
    return _text(name).strip(), values


# Characters XML 1.0 cannot carry at all, not even as references: most C0 controls, lone
# surrogates, U+FFFE/U+FFFF. JSON-RPC clients can store them; XML-RPC clients get U+FFFD.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """`text` escaped for XML, with what XML cannot carry replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", text))


def format_float(value: float) -> str:
    """Shortest text that reads back as `value`, without a trailing `.0` (xapi: 1.0 → "1")."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _write(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(f"<value>{_xml_text(value)}</value>")
    elif isinstance(value, bool):
        out.append(f"<value><boolean>{int(value)}</boolean></value>")
    elif isinstance(value, Int32):
        out.append(f"<value><i4>{int(value)}</i4></value>")
    elif isinstance(value, int):
        out.append(f"<value>{value}</value>")
    elif isinstance(value, float):
        out.append(f"<value><double>{format_float(value)}</double></value>")
    elif isinstance(value, datetime):
        out.append(f"<value><dateTime.iso8601>{format_datetime(value)}</dateTime.iso8601></value>")
    elif isinstance(value, list | tuple):
        out.append("<value><array><data>")
        for item in value:
            _write(item, out)
        out.append("</data></array></value>")
    elif isinstance(value, dict):
        out.append("<value><struct>")
        for key, item in value.items():
            out.append(f"<member><name>{_xml_text(str(key))}</name>")
            _write(item, out)
            out.append("</member>")
        out.append("</struct></value>")
    elif value is None:
        out.append("<value><nil/></value>")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as XML-RPC")


def render_value(value: object) -> str:
    """One `<value>…</value>` (also the text of a finished task's `result`, §6.4)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def render_success(value: object) -> bytes:
    out = [_HEADER, "<value><struct><member><name>Status</name><value>Success</value></member>"]
    out.append("<member><name>Value</name>")
    _write(value, out)
    out.append("</member></struct></value>" + _FOOTER)
    return "".join(out).encode()


def render_failure(description: list[str]) -> bytes:
    out = [_HEADER, "<value><struct><member><name>Status</name><value>Failure</value></member>"]
    out.append("<member><name>ErrorDescription</name>")
    _write(description, out)
    out.append("</member></struct></value>" + _FOOTER)
    return "".join(out).encode()


def render_raw(value: object) -> bytes:
    """A bare return value without the Status struct (system.listMethods, §2.2)."""
    return (_HEADER + render_value(value) + _FOOTER).encode()
