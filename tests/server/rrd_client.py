"""Raw HTTP to `/rrd_updates` of a running server, and waiting for its RRDs to fill."""

from __future__ import annotations

import base64
import http.client
import json
import math
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from tests.serving import PATIENCE_S, ROOT_PASSWORD, RunningServer


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The JSON export, whatever its shape (each test reads the members it checks)."""
        value = json.loads(self.body)
        assert isinstance(value, dict), value
        return value


def basic(user: str = "root", password: str = ROOT_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(
    server: RunningServer,
    query: list[tuple[str, str]] | str,
    headers: dict[str, str] | None = None,
) -> Answer:
    """GET /rrd_updates with `query` (pairs, or a raw query string)."""
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(
        address.hostname or "", address.port, timeout=PATIENCE_S
    )
    try:
        text = query if isinstance(query, str) else urlencode(query)
        connection.request("GET", f"/rrd_updates?{text}", headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Answer(
            status=response.status,
            headers={k.lower(): v for k, v in response.getheaders()},
            body=body,
        )
    finally:
        connection.close()


def newest(server: RunningServer, since_s: int = 30) -> dict[str, float]:
    """Legend → newest value of a JSON export of the hosts and every running VM."""
    answer = get(
        server,
        [("start", str(int(time.time()) - since_s)), ("json", ""), ("host", "true")],
        basic(),
    )
    assert answer.status == 200, answer
    document = answer.json()
    meta, data = document["meta"], document["data"]
    assert isinstance(meta, dict) and isinstance(data, list)
    if not data:
        return {}
    return dict(zip(meta["legend"], (float(v) for v in data[0]["values"]), strict=True))


def wait_for(server: RunningServer, legend: str) -> dict[str, float]:
    """The newest values, once `legend` has a known value among them."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        values = newest(server)
        if not math.isnan(values.get(legend, math.nan)):
            return values
        assert time.monotonic() < deadline, f"no value for {legend}: {values}"
        time.sleep(0.5)


def float32(value: float) -> float:
    """How an RRD keeps `value`."""
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result
