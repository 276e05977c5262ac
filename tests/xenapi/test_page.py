"""The dashboard's files on GET, beside the unchanged POST routes (http.py)."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest

from tests.serving import RunningServer
from xenmem.xenapi.http import load_page

IMPORT = re.compile(r'from "\./([\w-]+\.js)";')
REFERENCE = re.compile(r'(?:href|src)="(/static/[\w/.-]+)"')


def _get(server: RunningServer, path: str, method: str = "GET") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=10)
    connection.request(method, path, body=b"" if method == "POST" else None)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_every_file_the_page_names_is_served_and_every_module_is_used() -> None:
    page = load_page()
    assert set(REFERENCE.findall(page["/"].body.decode())) == {
        "/static/favicon.svg",
        "/static/style.css",
        "/static/js/main.js",
    }
    reached: set[str] = set()
    todo = ["/static/js/main.js"]
    while todo:
        path = todo.pop()
        if path not in reached:
            reached.add(path)
            todo += [f"/static/js/{name}" for name in IMPORT.findall(page[path].body.decode())]
    assert reached == {path for path in page if path.endswith(".js")}


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/static/style.css", "text/css; charset=utf-8"),
        ("/static/js/main.js", "text/javascript; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_page_files_with_their_content_types(
    server: RunningServer, path: str, content_type: str
) -> None:
    response = _get(server, path)
    assert response.status == 200
    assert response.getheader("content-type") == content_type
    assert response.getheader("x-content-type-options") == "nosniff"
    assert "default-src 'self'" in (response.getheader("content-security-policy") or "")
    assert int(response.getheader("content-length") or 0) == len(load_page()[path].body)


@pytest.mark.parametrize(
    "path",
    ["/index.html", "/static/", "/static/js/", "/static/../xenapi/http.py", "/jsonrpc", "/RPC2"],
)
def test_nothing_else_on_get(server: RunningServer, path: str) -> None:
    assert _get(server, path).status == 404


def test_post_is_still_the_api(server: RunningServer) -> None:
    # An empty body is not a call: XML-RPC's answer on `/`, as before the page existed.
    response = _get(server, "/", method="POST")
    assert response.status == 500
    assert response.getheader("content-type") == "text/html"
    assert response.getheader("access-control-allow-origin") is None
