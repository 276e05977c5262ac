"""The ceiling: a bare ASGI app on the same HTTP stack (uvicorn, same settings as
`xenmem serve`) that answers every POST with a constant XML-RPC or JSON-RPC success."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from xenmem.cli.serve import listen

_XML = (
    b'<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status'
    b"</name><value>Success</value></member><member><name>Value</name><value>42</value>"
    b"</member></struct></value></param></params></methodResponse>"
)
_JSON = b'{"jsonrpc":"2.0","result":42,"id":0}'

Scope = MutableMapping[str, Any]


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    json = scope["path"] == "/jsonrpc"
    body = _JSON if json else _XML
    content_type = b"application/json" if json else b"text/xml"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    listener = listen("127.0.0.1", args.port)
    print(f"ceiling at http://127.0.0.1:{listener.getsockname()[1]}/", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
