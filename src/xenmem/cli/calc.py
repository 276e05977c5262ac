"""`xenmem calc`: xapi's memory arithmetic offline, for capacity planning."""

from __future__ import annotations

import argparse

from xenmem.cli.args import domain_type_arg, multiplier_arg, size_arg, vcpus_arg
from xenmem.memory import (
    DEFAULT_SHADOW_MULTIPLIER,
    VmMemory,
    compute_memory_overhead,
    maximise_memory,
    start_requirement,
)
from xenmem.memory.units import BYTES_PER_MIB

__all__ = ["format_bytes", "register"]

_GIB = 1024 * BYTES_PER_MIB


def format_bytes(n_bytes: int, *, human: bool) -> str:
    """The number alone, or with its MiB/GiB equivalents when `human`."""
    if not human:
        return str(n_bytes)
    parts = [f"{n_bytes / BYTES_PER_MIB:g} MiB"]
    if n_bytes >= _GIB:
        parts.append(f"{n_bytes / _GIB:.2f} GiB")
    return f"{n_bytes} ({', '.join(parts)})"


def _vm(args: argparse.Namespace, *, static_max: int, target: int) -> VmMemory:
    return VmMemory(
        domain_type=args.domain_type,
        static_min=0,
        dynamic_min=target,
        target=target,
        dynamic_max=static_max,
        static_max=static_max,
        vcpus_max=args.vcpus,
        shadow_multiplier=args.shadow_multiplier,
    )


def _overhead(args: argparse.Namespace) -> int:
    return compute_memory_overhead(_vm(args, static_max=args.static_max, target=args.static_max))


def _footprint(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.target > args.static_max:
        parser.error(f"--target {args.target} is above --static-max {args.static_max}")
    return start_requirement(_vm(args, static_max=args.static_max, target=args.target))


def _maximise(args: argparse.Namespace) -> int:
    vm = _vm(args, static_max=0, target=0)
    return maximise_memory(vm, args.total, approximate=args.approximate)


def _add_vm_shape(parser: argparse.ArgumentParser, *, static_max: bool) -> None:
    parser.add_argument("--domain-type", required=True, type=domain_type_arg)
    if static_max:
        parser.add_argument("--static-max", required=True, type=size_arg, metavar="SIZE")
    parser.add_argument("--vcpus", required=True, type=vcpus_arg, metavar="N")
    parser.add_argument(
        "--shadow-multiplier",
        type=multiplier_arg,
        default=DEFAULT_SHADOW_MULTIPLIER,
        metavar="K",
        help="HVM_shadow_multiplier (default 1.0)",
    )
    parser.add_argument("--human", action="store_true", help="also show MiB/GiB")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    calc = commands.add_parser("calc", help="xapi's memory arithmetic, offline (bytes)")
    calc_commands = calc.add_subparsers(dest="calc_command", required=True)

    overhead = calc_commands.add_parser(
        "overhead", help="VM.compute_memory_overhead of a VM of this shape"
    )
    _add_vm_shape(overhead, static_max=True)
    overhead.set_defaults(compute=_overhead)

    footprint = calc_commands.add_parser(
        "footprint",
        help="host memory needed to start such a VM at TARGET (xapi's start check; "
        "pv_in_pvh always starts at static_max)",
    )
    _add_vm_shape(footprint, static_max=True)
    footprint.add_argument("--target", required=True, type=size_arg, metavar="SIZE")
    footprint.set_defaults(compute=lambda args: _footprint(args, footprint))

    maximise = calc_commands.add_parser(
        "maximise", help="VM.maximise_memory: the largest static_max that fits in TOTAL"
    )
    _add_vm_shape(maximise, static_max=False)
    maximise.add_argument("--total", required=True, type=size_arg, metavar="SIZE")
    maximise.add_argument(
        "--approximate",
        action="store_true",
        help="size for 64 vCPUs, tolerating later vCPU increases",
    )
    maximise.set_defaults(compute=_maximise)

    calc.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    print(format_bytes(args.compute(args), human=args.human))
    return 0
