"""`xe`: run one command against a XenAPI server and report as xe does.

Exit status 0 on success, 1 on any failure; failures go to stderr in xe's words (an
API error as `Error code:` and `Error parameters:` lines), never as a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import XenAPI

from xenmem.cli.xe import memory_commands, record_commands, vm_commands
from xenmem.cli.xe.api import Api
from xenmem.cli.xe.commands import COMMANDS, Call, Command
from xenmem.cli.xe.connection import connected, invocation_from_environment, resolve_settings
from xenmem.cli.xe.errors import usage_failure
from xenmem.cli.xe.invocation import Invocation
from xenmem.cli.xe.output import format_failure
from xenmem.cli.xe.progress import Progress
from xenmem.cli.xe.reporting import reported

__all__ = ["main", "run"]

# The modules whose @command decorators fill COMMANDS.
_COMMAND_MODULES = (memory_commands, record_commands, vm_commands)


def _help(invocation: Invocation, out: TextIO) -> None:
    """`xe help` lists the commands; `xe help COMMAND` describes one."""
    wanted = invocation.params.get("command")
    if wanted is None:
        out.write("Commands:\n" + "".join(f"  {n}\n" for n in sorted(COMMANDS)))
        return
    found = COMMANDS.get(wanted)
    if found is None:
        raise usage_failure("Unknown command", wanted)
    out.write(
        f"command name            : {found.name}\n"
        f"        reqd params     : {', '.join(found.required)}\n"
        f"        optional params : {', '.join(found.optional)}\n"
        f"        description     : {found.description}\n"
    )


def _command(invocation: Invocation) -> Command:
    found = COMMANDS.get(invocation.command)
    if found is None:
        raise usage_failure("Unknown command", invocation.command)
    for key in found.required:
        if key not in invocation.params:
            raise usage_failure("Required parameter not found", key)
    return found


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Run one xe command line; the exit status."""
    invocation = invocation_from_environment(argv)
    if invocation.command == "help":
        _help(invocation, out)
        return 0
    found = _command(invocation)
    with connected(resolve_settings(invocation.connection)) as session:
        api = Api(session, progress=Progress(err))
        try:
            found.run(Call(api=api, invocation=invocation, command=found, out=out))
        except XenAPI.Failure as failure:
            err.write(format_failure(failure.details, api.describe_ref))
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return reported(lambda: run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
