"""`xenmem user add NAME --role ROLE`: a local user, also while the server runs."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from xenmem.cli.serve import DEFAULT_STATE_DIR
from xenmem.db.sqlite import connect
from xenmem.db.users import set_user
from xenmem.xenapi.roles import ROLES
from xenmem.xenapi.throttle import MAX_USER_NAME_LENGTH

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="manage the users who may log in")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser(
        "add",
        help="add a user, or change its role and password",
        description="The password is asked for on a terminal; otherwise it is the first "
        "line of standard input.",
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--state", type=Path, default=DEFAULT_STATE_DIR, metavar="DIR")
    add.set_defaults(run=lambda args: _add(args, add))


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _add(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.name or ":" in args.name or len(args.name) > MAX_USER_NAME_LENGTH:
        parser.error(f"invalid user name {args.name!r}")
    try:
        password = _read_password()
    except (ValueError, EOFError) as error:
        parser.error(str(error) or "no password given")
    if not password:
        parser.error("the password is empty")
    conn = connect(args.state)
    try:
        set_user(conn, args.name, args.role, password)
    finally:
        conn.close()
    print(f"xenmem: user {args.name} has role {args.role}")
    return 0
