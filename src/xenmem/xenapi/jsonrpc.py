"""JSON-RPC v1 and v2 on `/jsonrpc`, as xapi answers them (protocol §3).

v2 is recognised by `"jsonrpc": "2.0"`; v2 errors carry code 1 with the XenAPI code as the
message, and a v2 success has no `error` key (XO's parser treats any `error` as failure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from xenmem.xenapi.types import format_datetime

__all__ = ["JsonRpcCall", "JsonRpcParseError", "parse_call", "render_failure", "render_success"]


class JsonRpcParseError(ValueError):
    """Not a call xapi would read: bad JSON, or no method, params or id (HTTP 500)."""


@dataclass(frozen=True, kw_only=True)
class JsonRpcCall:
    method: str
    params: list[object]
    id: object
    v2: bool


def parse_call(body: bytes) -> JsonRpcCall:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise JsonRpcParseError(f"bad JSON: {error}") from None
    if not isinstance(request, dict):
        raise JsonRpcParseError("a call is a JSON object")
    method, params = request.get("method"), request.get("params")
    call_id = request.get("id")
    if isinstance(call_id, bool) or not isinstance(call_id, str | int):
        raise JsonRpcParseError("missing or bad id")
    if not isinstance(method, str) or not isinstance(params, list):
        raise JsonRpcParseError("missing method or params")
    return JsonRpcCall(method=method, params=params, id=call_id, v2=request.get("jsonrpc") == "2.0")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _dump(response: dict[str, object]) -> bytes:
    return json.dumps(response, default=_default, separators=(",", ":")).encode()


def render_success(call: JsonRpcCall, value: object) -> bytes:
    if call.v2:
        return _dump({"jsonrpc": "2.0", "result": value, "id": call.id})
    return _dump({"result": value, "error": None, "id": call.id})


def render_failure(call: JsonRpcCall, description: list[str]) -> bytes:
    if call.v2:
        error = {"code": 1, "message": description[0], "data": description[1:]}
        return _dump({"jsonrpc": "2.0", "error": error, "id": call.id})
    return _dump({"result": None, "error": description, "id": call.id})
