"""`xenmem simulate FILE`: run a ballooning scenario on the virtual clock, print JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xenmem.cli.scenario import ScenarioError, parse_scenario, run_scenario

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run a ballooning scenario (JSON, KiB) on the virtual clock and print the outcome",
    )
    simulate.add_argument("file", type=Path, metavar="FILE", help="scenario JSON ('-': stdin)")
    simulate.set_defaults(run=_run)


def _read(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    return path.read_text(encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    try:
        scenario = parse_scenario(json.loads(_read(args.file)))
    except (OSError, UnicodeDecodeError) as error:
        return _fail(f"cannot read {args.file}: {error}")
    except json.JSONDecodeError as error:
        return _fail(f"{args.file} is not JSON: {error}")
    except ScenarioError as error:
        return _fail(f"invalid scenario {args.file}: {error}")
    print(json.dumps(run_scenario(scenario), indent=2))
    return 0


def _fail(message: str) -> int:
    print(f"xenmem simulate: error: {message}", file=sys.stderr)
    return 2
