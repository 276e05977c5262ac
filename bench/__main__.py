"""Run every benchmark module in this package, or the ones named on the command line.

Usage: python -m bench [NAME ...]
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def benchmark_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        info.name for info in pkgutil.iter_modules([str(here)]) if not info.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    available = benchmark_names()
    chosen = argv or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available)}")
        return 2
    for name in chosen:
        print(f"== bench.{name}", flush=True)
        # Each benchmark parses its own options; run it with its defaults.
        sys.argv = [f"bench.{name}"]
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
