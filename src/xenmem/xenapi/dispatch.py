"""From a method name and raw parameters to a result or a XenAPI error, in xapi's order.

Order of checks for a known method (protocol §4): parameter count → argument decoding →
session → RBAC → the body. Errors are values (`Failure`); nothing a client sends can make
this raise.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xenmem.db import NULL_REF, Store
from xenmem.errors import (
    MESSAGE_METHOD_UNKNOWN,
    MESSAGE_PARAMETER_COUNT_MISMATCH,
    NO_ASYNC_MODE,
    RBAC_PERMISSION_DENIED,
    SESSION_INVALID,
    XenAPIError,
    logged_internal_error,
)
from xenmem.toolstack import Context
from xenmem.toolstack.runtime import PoolRuntime
from xenmem.xenapi.datamodel import REQUIRED, Message, Model
from xenmem.xenapi.model import decode_arg
from xenmem.xenapi.sessions import Sessions
from xenmem.xenapi.tasks import Tasks

__all__ = ["LIST_METHODS", "UNDECLARED", "Dispatcher", "Failure", "Raw", "Reply", "Success"]

log = logging.getLogger(__name__)

LIST_METHODS = "system.listMethods"
UNDECLARED = "which it does not declare"
"""Logged when a message's body raises an error its datamodel entry does not declare."""
_ASYNC = "Async."
_NO_PERMISSION = "No permission in user session"


@dataclass(frozen=True, slots=True)
class Success:
    value: object


@dataclass(frozen=True, slots=True)
class Failure:
    description: list[str]


@dataclass(frozen=True, slots=True)
class Raw:
    """A result sent without the Status wrapper in XML-RPC (system.listMethods, §2.2)."""

    value: object


Reply = Success | Failure | Raw
Body = Callable[..., object]


class Dispatcher:
    def __init__(
        self,
        *,
        model: Model,
        store: Store,
        sessions: Sessions,
        tasks: Tasks,
        bodies: Mapping[str, Body],
        runtime: PoolRuntime | None = None,
    ) -> None:
        self._model = model
        self._runtime = runtime
        self._store = store
        self._sessions = sessions
        self._tasks = tasks
        self._bodies = bodies
        self._method_names = [*model.messages, LIST_METHODS]

    def is_session(self, ref: str) -> bool:
        """Whether `ref` names a live session (the HTTP front's larger body limit)."""
        return self._sessions.is_valid(ref)

    async def call(self, method: str, params: list[object]) -> Reply:
        if method == LIST_METHODS:
            return Raw(self._method_names)
        try:
            return Success(await self._call(method, params))
        except XenAPIError as error:
            return Failure(error.description)
        except Exception:  # a bug or a failed write answers INTERNAL_ERROR; serving goes on
            return Failure(logged_internal_error(log, method).description)

    def _resolve(self, method: str, params: list[object]) -> tuple[Message, bool]:
        is_async = method.startswith(_ASYNC)
        # `Async.` takes only the dotted name; the `Class_message` alias is synchronous (§5).
        message = (
            self._model.messages.get(method[len(_ASYNC) :])
            if is_async
            else self._model.resolve(method)
        )
        if message is None:
            # xapi checks the session of an unknown call first when it has one (§5).
            first = params[0] if params else None
            if isinstance(first, str) and first.startswith("OpaqueRef:"):
                self._sessions.role(first)
            raise MESSAGE_METHOD_UNKNOWN(method)
        if is_async and not message.is_async:
            raise NO_ASYNC_MODE(f"No async mode for this operation (rpc: {message.wire_name})")
        return message, is_async

    def _decode(self, message: Message, params: list[object]) -> list[object]:
        given = params[1:] if message.session else params
        received = len(params) - 1 if message.session else len(params)
        optional = message.required_count < len(message.params)
        # Extra trailing parameters are ignored only where some are optional (login, §4).
        if received < message.required_count or (received > len(message.params) and not optional):
            raise MESSAGE_PARAMETER_COUNT_MISMATCH(
                message.wire_name, message.required_count, received
            )
        args = []
        for index, param in enumerate(message.params):
            if index < len(given):
                args.append(decode_arg(param.type, given[index], param.name))
            else:
                assert param.default is not REQUIRED
                args.append(param.default)
        return args

    def _authorise(self, message: Message, params: list[object]) -> str:
        """The caller's session ref, after the session and RBAC checks."""
        if not message.session:
            return NULL_REF
        session = params[0]
        if not isinstance(session, str):
            raise SESSION_INVALID(str(session))
        if self._sessions.role(session) not in message.roles:
            raise RBAC_PERMISSION_DENIED(message.wire_name.lower(), _NO_PERMISSION)
        return session

    async def _call(self, method: str, params: list[object]) -> object:
        message, is_async = self._resolve(method, params)
        args = self._decode(message, params)
        ctx = Context(
            store=self._store, session=self._authorise(message, params), runtime=self._runtime
        )
        body = self._bodies[message.wire_name]

        async def run(context: Context) -> object:
            try:
                result = body(context, *args)
                return await result if inspect.isawaitable(result) else result
            except XenAPIError as error:
                if not message.declares(error):
                    log.error("%s raised %s, %s", message.wire_name, error, UNDECLARED)
                raise

        if is_async:
            return self._tasks.start(f"{_ASYNC}{message.wire_name}", run, ctx)
        result = await run(ctx)
        return "" if result is None else result
