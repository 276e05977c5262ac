"""JSON-RPC v1 and v2 on `/jsonrpc`, as xapi answers them (protocol §3).

v2 is recognised by `"jsonrpc": "2.0"`; v2 errors carry code 1 with the XenAPI code as the
message, and a v2 success has no `error` key (XO's parser treats any `error` as failure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from xenmem.xenapi.types import format_datetime
from xenmem.xenapi.xmlrpc import MAX_NESTING

__all__ = [
    "MAX_NESTING",
    "JsonRpcCall",
    "JsonRpcParseError",
    "NestingTooDeepError",
    "parse_call",
    "render_failure",
    "render_success",
]


class JsonRpcParseError(ValueError):
    """Not a call xapi would read: bad JSON, or no method, params or id (HTTP 500)."""


class NestingTooDeepError(JsonRpcParseError):
    """Arrays and objects nested deeper than the limit (answered with HTTP 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"arrays and objects nested more than {limit} levels deep")


def _nesting(value: object) -> int:
    """How deeply arrays and objects nest in `value` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item if isinstance(child, list | dict))
    return deepest


@dataclass(frozen=True, kw_only=True)
class JsonRpcCall:
    method: str
    params: list[object]
    id: object
    v2: bool


def parse_call(body: bytes, max_nesting: int = MAX_NESTING) -> JsonRpcCall:
    """The call in `body`, or JsonRpcParseError (NestingTooDeepError)."""
    try:
        request = json.loads(body)
    except RecursionError:  # nested far deeper than any limit
        raise NestingTooDeepError(max_nesting) from None
    except ValueError as error:
        raise JsonRpcParseError(f"bad JSON: {error}") from None
    if not isinstance(request, dict):
        raise JsonRpcParseError("a call is a JSON object")
    method, params = request.get("method"), request.get("params")
    call_id = request.get("id")
    if isinstance(call_id, bool) or not isinstance(call_id, str | int):
        raise JsonRpcParseError("missing or bad id")
    if not isinstance(method, str) or not isinstance(params, list):
        raise JsonRpcParseError("missing method or params")
    if max(map(_nesting, params), default=0) > max_nesting:
        raise NestingTooDeepError(max_nesting)
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
