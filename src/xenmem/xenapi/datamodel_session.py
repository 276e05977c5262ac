"""session, task and event: the protocol's own classes (protocol §4, §6).

Sessions and tasks live in the store like any object but are not persisted (a restart
ends every session, so clients see SESSION_INVALID and log in again, as after an xapi
restart). Sessions have no events and no get_all; `event` has no records at all.
"""

from __future__ import annotations

from functools import partial

from xenmem.errors import (
    EVENT_FROM_TOKEN_PARSE_FAILURE,
    EVENTS_LOST,
    HANDLE_INVALID,
    OPERATION_NOT_ALLOWED,
    RBAC_PERMISSION_DENIED,
    SESSION_AUTHENTICATION_FAILED,
    SESSION_INVALID,
    SESSION_NOT_REGISTERED,
)
from xenmem.xenapi.datamodel import ClassDef, Message, Param, dro, rw
from xenmem.xenapi.roles import READ_ONLY, at_least
from xenmem.xenapi.types import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    STRING,
    AnyValue,
    Enum,
    Map,
    Ref,
    Set,
)

__all__ = ["EVENT", "SESSION", "TASK", "TASK_STATUS"]

SMAP = Map(STRING, STRING)
TASK_STATUS = Enum("task_status_type", ("pending", "success", "failure", "cancelling", "cancelled"))
_TASK_OPERATIONS = Enum("task_allowed_operations", ("cancel", "destroy"))
_ANYONE = at_least(READ_ONLY)


_session_message = partial(Message, cls="session", roles=_ANYONE)


SESSION = ClassDef(
    name="session",
    fields=(
        dro("uuid", STRING),
        dro("this_host", Ref("host")),
        dro("this_user", Ref("user")),
        dro("last_active", DATETIME),
        dro("pool", BOOL, False),
        rw("other_config", SMAP),
        dro("is_local_superuser", BOOL, False),
        dro("subject", Ref("subject")),
        dro("validation_time", DATETIME),
        dro("auth_user_sid", STRING),
        dro("auth_user_name", STRING),
        dro("rbac_permissions", Set(STRING)),
        dro("tasks", Set(Ref("task"))),
        dro("parent", Ref("session")),
        dro("originator", STRING),
        dro("client_certificate", BOOL, False),
    ),
    messages=(
        _session_message(
            name="login_with_password",
            params=(
                Param(name="uname", type=STRING),
                Param(name="pwd", type=STRING),
                Param(name="version", type=STRING, default="1.1"),
                Param(name="originator", type=STRING, default=""),
            ),
            result=Ref("session"),
            session=False,
            errors=(SESSION_AUTHENTICATION_FAILED,),
            doc="Authenticate and return a new session.",
        ),
        _session_message(name="logout", doc="End this session."),
        _session_message(name="local_logout", doc="End this session (after a local login)."),
    ),
    persist=False,
    events=False,
    enumerable=False,
    doc="A login session.",
)

TASK = ClassDef(
    name="task",
    fields=(
        dro("uuid", STRING),
        rw("name_label", STRING),
        rw("name_description", STRING),
        dro("allowed_operations", Set(_TASK_OPERATIONS)),
        dro("current_operations", Map(STRING, _TASK_OPERATIONS)),
        dro("created", DATETIME),
        dro("finished", DATETIME),
        dro("status", TASK_STATUS, "pending"),
        dro("resident_on", Ref("host")),
        dro("progress", FLOAT, 0.0),
        dro("type", STRING, "<none/>"),
        dro("result", STRING),
        dro("error_info", Set(STRING)),
        rw("other_config", SMAP),
        dro("subtask_of", Ref("task")),
        dro("subtasks", Set(Ref("task"))),
        dro("backtrace", STRING, "()"),
    ),
    messages=(
        Message(
            cls="task",
            name="cancel",
            params=(Param(name="task", type=Ref("task")),),
            roles=_ANYONE,
            is_async=True,
            errors=(OPERATION_NOT_ALLOWED, RBAC_PERMISSION_DENIED),
            doc="Ask a pending task to stop; it ends as cancelled.",
        ),
        Message(
            cls="task",
            name="destroy",
            params=(Param(name="self", type=Ref("task")),),
            roles=_ANYONE,
            errors=(RBAC_PERMISSION_DENIED,),
            doc="Forget a task.",
        ),
    ),
    persist=False,
    # Anyone may change, cancel or destroy a task of their own user; another user's only
    # with the permission task.destroy/any (xapi's taskHelper, `Tasks.assert_may_change`).
    writer_roles=_ANYONE,
    writer_errors=(RBAC_PERMISSION_DENIED,),
    doc="An asynchronous call in progress or finished.",
)

_EVENT_OPERATION = Enum("event_operation", ("add", "del", "mod"))


_event_message = partial(Message, cls="event", roles=_ANYONE)


EVENT = ClassDef(
    name="event",
    fields=(
        dro("id", INT, 0),
        dro("timestamp", DATETIME),
        dro("class", STRING),
        dro("operation", _EVENT_OPERATION, "add"),
        dro("ref", STRING),
        dro("obj_uuid", STRING),
    ),
    messages=(
        _event_message(
            name="from",
            params=(
                Param(name="classes", type=Set(STRING)),
                Param(name="token", type=STRING),
                Param(name="timeout", type=FLOAT),
            ),
            result=AnyValue("event batch"),
            # SESSION_INVALID: the session ended (logout, expiry) while the call waited.
            errors=(EVENT_FROM_TOKEN_PARSE_FAILURE, SESSION_INVALID),
            doc="Block until an object of `classes` changes after `token`, or `timeout` s.",
        ),
        _event_message(
            name="inject",
            params=(
                Param(name="class", type=STRING),
                Param(name="ref", type=STRING),
            ),
            result=STRING,
            errors=(HANDLE_INVALID,),
            doc="Mark an object changed; returns a token from just before the change.",
        ),
        _event_message(
            name="register",
            params=(Param(name="classes", type=Set(STRING)),),
            doc="Legacy: subscribe this session to `classes` for event.next.",
        ),
        _event_message(
            name="unregister",
            params=(Param(name="classes", type=Set(STRING)),),
            doc="Legacy: unsubscribe from `classes`.",
        ),
        _event_message(
            name="next",
            result=AnyValue("event record set"),
            # EVENTS_LOST: deletions it had not reported yet were forgotten meanwhile.
            errors=(SESSION_NOT_REGISTERED, EVENTS_LOST),
            doc="Legacy: block until a subscribed object changes; return the events.",
        ),
        _event_message(name="get_current_id", result=INT, doc="The current event generation."),
    ),
    database=False,
    persist=False,
    events=False,
    doc="A change to an object, as event.from and event.next report it.",
)
