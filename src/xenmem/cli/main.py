"""The `xenmem` command: one subcommand module per job, each with its own `register`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from xenmem.cli import apidoc, calc, serve, simulate, status, user
from xenmem.cli.args import OneLineErrorParser

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = (serve, calc, simulate, user, apidoc, status)


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(
        prog="xenmem", description="Xen host memory management, xapi- and squeezed-compatible."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)
    for module in _SUBCOMMANDS:
        module.register(commands)
    return parser


def _attach_negative_values(argv: Sequence[str]) -> list[str]:
    """Join `--opt -4GiB` into `--opt=-4GiB` so a negative value reaches its validator.

    argparse otherwise takes `-4GiB` for an option and reports a missing value instead of
    the bad one; no xenmem option starts with a digit.
    """
    joined: list[str] = []
    for arg in argv:
        is_negative = len(arg) > 1 and arg[0] == "-" and arg[1].isdigit()
        if is_negative and joined and joined[-1].startswith("--") and "=" not in joined[-1]:
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(
        _attach_negative_values(sys.argv[1:] if argv is None else argv)
    )
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
