"""`xenmem api-doc` is generated from the datamodel: every class, field and custom message."""

from __future__ import annotations

import pytest

from xenmem.cli.main import main
from xenmem.xenapi.datamodel import Kind
from xenmem.xenapi.model import MODEL


def test_api_doc_covers_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["api-doc"]) == 0
    text = capsys.readouterr().out
    for cd in MODEL.classes:
        assert f"## {cd.name}\n" in text
        for f in cd.fields:
            assert f"| `{f.name}` | {f.type} | {f.qualifier}" in text
    for m in MODEL.messages.values():
        if m.kind is Kind.CUSTOM:
            assert f"- `{m.wire_name}(" in text
    assert (
        "`session.login_with_password(uname: string, pwd: string, version: string = '1.1'" in text
    )
    assert "`VM.create(session, args: VM record)` → VM ref; async; vm-admin or above" in text
    assert (
        "| `memory_free` | int | DynamicRO (removed: getter answers MESSAGE_REMOVED) | 0 |" in text
    )
