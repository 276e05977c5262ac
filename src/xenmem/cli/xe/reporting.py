"""How xe ends a command that failed: its words on stderr and exit status 1.

Shared by `xe` and `xenmem status`, so that no failure reaches the user as a traceback.
"""

from __future__ import annotations

import http.client
import sys
import xmlrpc.client
from collections.abc import Callable

import XenAPI

from xenmem.cli.xe.errors import XeFailure
from xenmem.cli.xe.output import format_failure

__all__ = ["reported"]


def reported(action: Callable[[], int]) -> int:
    """Run `action`; its exit status, or 1 after reporting why it failed."""
    try:
        return action()
    except XeFailure as failure:
        print(failure, file=sys.stderr)
    except XenAPI.Failure as failure:
        sys.stderr.write(format_failure(failure.details))
    except (xmlrpc.client.ProtocolError, xmlrpc.client.Fault, http.client.HTTPException):
        print("Server internal error.", file=sys.stderr)
    except BrokenPipeError:
        pass  # the reader of our output went away (`xe vm-list | head`)
    except OSError:
        print("Lost connection to the server.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    return 1
