"""xe's client-side failures: a message for stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

__all__ = ["USAGE_HINT", "XeFailure", "usage_failure"]

USAGE_HINT = "For usage run: 'xe help'"


class XeFailure(Exception):
    """A failure xe reports as text; `str(failure)` is exactly what goes to stderr."""


def usage_failure(kind: str, detail: str) -> XeFailure:
    """xe's parameter errors (xapi_cli.ml `param_error`): the problem, then where to get help."""
    return XeFailure(f"{kind}: {detail}\n{USAGE_HINT}")
