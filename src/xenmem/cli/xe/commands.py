"""The xe command table: each command's name, parameters and implementation.

Command modules register with `@command(...)`; `main` looks the invocation's command up
here, checks its required parameters and runs it with a `Call`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from xenmem.cli.xe.api import Api
from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.fields import parse_size_param
from xenmem.cli.xe.invocation import Invocation
from xenmem.cli.xe.output import format_minimal, format_record
from xenmem.cli.xe.records import RecordView, select

__all__ = ["COMMANDS", "Call", "Command", "command"]


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    run: Callable[[Call], None]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    description: str = ""


COMMANDS: dict[str, Command] = {}


def command(
    name: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = (), description: str
) -> Callable[[Callable[[Call], None]], Callable[[Call], None]]:
    def register(run: Callable[[Call], None]) -> Callable[[Call], None]:
        if name in COMMANDS:
            raise ValueError(f"xe command {name} registered twice")
        COMMANDS[name] = Command(
            name=name, run=run, required=required, optional=optional, description=description
        )
        return run

    return register


# Which VMs a VM command may act on (cli_operations.ml `select_vms`): by default neither
# templates nor control domains.
_NO_CONTROL = {"is-control-domain": "false"}
_NO_TEMPLATE = {"is-a-template": "false"}


@dataclass(kw_only=True)
class Call:
    """One running command: its parameters, the API, and where output goes."""

    api: Api
    invocation: Invocation
    command: Command
    out: TextIO
    _own: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self._own = (*self.command.required, *self.command.optional)

    @property
    def params(self) -> Mapping[str, str]:
        return self.invocation.params

    def flag(self, name: str) -> bool:
        return self.invocation.flag(name)

    def size(self, name: str) -> int:
        """A required size parameter in bytes."""
        return parse_size_param(name, self.params[name])

    def print(self, text: str) -> None:
        self.out.write(text + "\n")

    def vms(self, *, control: bool = False, templates: bool = False) -> list[RecordView]:
        """The VMs this command acts on: one, or several with `--multiple`."""
        fixed = {**({} if control else _NO_CONTROL), **({} if templates else _NO_TEMPLATE)}
        chosen = select(self.api, "VM", self.params, ignored=self._own, fixed=fixed)
        return self._one_or_multiple(chosen, "VMs", "matches VMs")

    def hosts(self) -> list[RecordView]:
        """The hosts this command acts on: one, or several with `--multiple`."""
        chosen = select(self.api, "host", self.params, ignored=self._own)
        return self._one_or_multiple(chosen, "hosts", "matching hosts")

    def host(self, name_or_uuid: str) -> RecordView:
        """The one host `on=`/`host=` names (a uuid, name-label or hostname)."""
        chosen = select(self.api, "host", {"host": name_or_uuid})
        if len(chosen) != 1:
            problem = "No matching hosts found" if not chosen else "Multiple matching hosts found"
            raise XeFailure(f"Error: {problem}")
        return chosen[0]

    def _one_or_multiple(
        self, chosen: list[RecordView], plural: str, several: str
    ) -> list[RecordView]:
        if not chosen:
            raise XeFailure(f"Error: No matching {plural} found")
        if len(chosen) > 1 and not self.flag("multiple"):
            raise XeFailure(
                f"Error: Multiple {several} found. --multiple required to complete the operation"
            )
        return chosen

    def print_records(self, views: list[RecordView], default_params: str | None) -> None:
        """Records as xe lists them; `--minimal`: the first asked field's values, one line."""
        params = self.params.get("params", default_params)
        if self.flag("minimal"):
            first = "uuid" if params is None or params == "all" else params.split(",")[0]
            self.out.write(format_minimal([v.value(first) for v in views]))
            return
        for view in views:
            self.out.write(format_record(view.shown(params)))
