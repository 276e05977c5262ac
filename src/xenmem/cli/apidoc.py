"""`xenmem api-doc`: the served API as Markdown, generated from the datamodel."""

from __future__ import annotations

import argparse

from xenmem.xenapi.datamodel import REQUIRED, ClassDef, Kind, Message, Model
from xenmem.xenapi.model import MODEL
from xenmem.xenapi.roles import ROLES

__all__ = ["api_markdown", "register"]


def _weakest_role(message: Message) -> str:
    return max(message.roles, key=ROLES.index)


def _message_line(m: Message) -> str:
    params = ", ".join(
        f"{p.name}: {p.type}" + ("" if p.default is REQUIRED else f" = {p.default!r}")
        for p in m.params
    )
    session = "session, " if m.session and params else ("session" if m.session else "")
    result = "void" if m.result is None else str(m.result)
    flags = ["async" if m.is_async else "", f"{_weakest_role(m)} or above"]
    errors = ", ".join(e.code for e in m.errors)
    line = f"- `{m.wire_name}({session}{params})` → {result}; {'; '.join(f for f in flags if f)}"
    line += f"; errors: {errors}" if errors else ""
    return line + (f". {m.doc}" if m.doc else "")


def _class_section(model: Model, cd: ClassDef) -> list[str]:
    lines = [f"## {cd.name}", "", cd.doc, ""]
    if cd.fields:
        lines += ["| field | type | qualifier | default |", "|---|---|---|---|"]
        for f in cd.fields:
            default = "required" if f.default is REQUIRED else repr(f.initial)
            note = " (removed: getter answers MESSAGE_REMOVED)" if f.removed else ""
            lines.append(f"| `{f.name}` | {f.type} | {f.qualifier}{note} | {default} |")
        lines.append("")
    messages = [m for m in model.messages.values() if m.cls == cd.name]
    custom = [m for m in messages if m.kind is Kind.CUSTOM]
    implicit = len(messages) - len(custom)
    lines += [_message_line(m) for m in custom]
    if implicit:
        lines.append(
            f"- and {implicit} generated messages (get_record, get_<field>, set_<RW field>, ...)"
        )
    return [*lines, ""]


def api_markdown(model: Model = MODEL) -> str:
    lines = [
        "# The XenAPI served by xenmem",
        "",
        "Generated from the datamodel (`xenmem api-doc`). Every message but "
        "session.login_with_password and system.listMethods takes the session first.",
        "",
    ]
    for cd in model.classes:
        lines += _class_section(model, cd)
    return "\n".join(lines)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = commands.add_parser("api-doc", help="print the served API as Markdown")
    doc.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    print(api_markdown())
    return 0
