"""A web page cannot drive the server: a call that names a foreign page in `Origin` is
refused before it is read, and no answer allows another origin to read it (CORS); clients
that send no Origin (SDKs, XO's connector, xe) are served whatever content type they send,
and so is the dashboard on the server's own origin."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.serving import RunningServer

JSON_LIST = json.dumps(
    {"id": 1, "jsonrpc": "2.0", "method": "system.listMethods", "params": []}
).encode()
XML_LIST = b"<methodCall><methodName>system.listMethods</methodName></methodCall>"


def _post(
    server: RunningServer, path: str, body: bytes, headers: dict[str, str]
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=30)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://127.0.0.1:1", "https://{netloc}", "http://{netloc}.x"],
)
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/jsonrpc", "application/json"),
        ("/jsonrpc", "text/plain"),  # what a page's form or no-cors fetch can send
        ("/", "text/plain"),
        ("/", "application/x-www-form-urlencoded"),
    ],
)
def test_a_foreign_origin_is_refused(
    server: RunningServer, origin: str, path: str, content_type: str
) -> None:
    netloc = urlsplit(server.url).netloc
    body = JSON_LIST if path == "/jsonrpc" else XML_LIST
    response = _post(
        server,
        path,
        body,
        {"Content-Type": content_type, "Origin": origin.format(netloc=netloc)},
    )
    assert response.status == 403
    assert response.getheader("access-control-allow-origin") is None


def test_a_refused_call_is_not_made(server: RunningServer) -> None:
    session = server.session()
    pool = session.xenapi.pool.get_all()[0]
    before = session.xenapi.pool.get_name_description(pool)
    call = {
        "id": 1,
        "jsonrpc": "2.0",
        "method": "pool.set_name_description",
        "params": [session._session, pool, before + " changed from a web page"],
    }
    response = _post(
        server,
        "/jsonrpc",
        json.dumps(call).encode(),
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    assert response.status == 403
    assert session.xenapi.pool.get_name_description(pool) == before


@pytest.mark.parametrize(
    "content_type", ["text/xml", "application/json", "text/plain", "application/octet-stream", ""]
)
def test_clients_without_origin_are_served_whatever_the_content_type(
    server: RunningServer, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    xml = _post(server, "/", XML_LIST, headers)
    assert xml.status == 200
    assert xml.getheader("access-control-allow-origin") is None
    answer = _post(server, "/jsonrpc", JSON_LIST, headers)
    assert answer.status == 200


def test_the_dashboards_own_origin_is_served(server: RunningServer) -> None:
    netloc = urlsplit(server.url).netloc
    response = _post(
        server,
        "/jsonrpc",
        JSON_LIST,
        {"Content-Type": "application/json", "Origin": f"http://{netloc}"},
    )
    assert response.status == 200


def test_no_preflight_allows_another_origin(server: RunningServer) -> None:
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=30)
    connection.request(
        "OPTIONS",
        "/jsonrpc",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.getheader("access-control-allow-origin") is None
    assert response.getheader("access-control-allow-headers") is None


def test_rrd_updates_from_another_origin_are_refused(server: RunningServer) -> None:
    session = server.session()

    def get(headers: dict[str, str]) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=30)
        connection.request(
            "GET", f"/rrd_updates?start=0&session_id={session.handle}", headers=headers
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    refused = get({"Origin": "http://evil.example"})
    assert refused.status == 403
    served = get({})
    assert served.status == 200
    assert served.getheader("access-control-allow-origin") is None
