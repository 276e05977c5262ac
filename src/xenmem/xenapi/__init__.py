"""The XenAPI protocol: datamodel, dispatch, XML-RPC/JSON-RPC, sessions, RBAC, events, tasks.

A thin layer: the datamodel declares every class and message; generic messages are
answered here, memory messages by the toolstack (`xenmem.toolstack.MESSAGES`).
"""

from xenmem.xenapi.app import ServerConfig, XenAPIServer, open_server
from xenmem.xenapi.http import XenAPIApp
from xenmem.xenapi.model import MODEL

__all__ = ["MODEL", "ServerConfig", "XenAPIApp", "XenAPIServer", "open_server"]
