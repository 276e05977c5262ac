"""The bodies of the implicit per-class messages, one per `Kind` (protocol §5).

Each takes the message (for its class and field) and returns a function of the call's
context and decoded arguments, like the toolstack's bodies.
"""

from __future__ import annotations

from collections.abc import Callable

from xenmem.errors import MAP_DUPLICATE_KEY, MESSAGE_REMOVED, UUID_INVALID
from xenmem.toolstack import Context
from xenmem.xenapi.datamodel import Kind, Message

__all__ = ["generic_body"]

Body = Callable[..., object]


def _get_all(m: Message) -> Body:
    return lambda ctx: list(ctx.store.records(m.cls))


def _get_all_records(m: Message) -> Body:
    return lambda ctx: dict(ctx.store.records(m.cls))


def _get_record(m: Message) -> Body:
    return lambda ctx, ref: ctx.record(m.cls, ref)


def _get_by_uuid(m: Message) -> Body:
    def body(ctx: Context, uuid: str) -> str:
        ref = ctx.store.ref_of_uuid(m.cls, uuid)
        if ref is None:
            raise UUID_INVALID(m.cls, uuid)
        return ref

    return body


def _get_by_name_label(m: Message) -> Body:
    def body(ctx: Context, label: str) -> list[str]:
        return [ref for ref, r in ctx.store.records(m.cls).items() if r["name_label"] == label]

    return body


def _get_field(m: Message, *, removed: bool) -> Body:
    def body(ctx: Context, ref: str) -> object:
        record = ctx.record(m.cls, ref)
        if removed:
            raise MESSAGE_REMOVED()
        return record[m.field]

    return body


def _set_field(m: Message) -> Body:
    def body(ctx: Context, ref: str, value: object) -> None:
        ctx.record(m.cls, ref)
        with ctx.store.transaction() as tx:
            tx.update(m.cls, ref, {m.field: value})

    return body


def _add_to_map(m: Message) -> Body:
    def body(ctx: Context, ref: str, key: str, value: object) -> None:
        record = ctx.record(m.cls, ref)
        current = record[m.field]
        assert isinstance(current, dict)
        if key in current:
            raise MAP_DUPLICATE_KEY(m.cls, m.field, str(record["uuid"]), key)
        with ctx.store.transaction() as tx:
            tx.update(m.cls, ref, {m.field: {**current, key: value}})

    return body


def _remove_from_map(m: Message) -> Body:
    def body(ctx: Context, ref: str, key: str) -> None:
        current = ctx.record(m.cls, ref)[m.field]
        assert isinstance(current, dict)
        if key in current:  # removing an absent key is not an error (xapi)
            with ctx.store.transaction() as tx:
                tx.update(m.cls, ref, {m.field: {k: v for k, v in current.items() if k != key}})

    return body


def _add_to_set(m: Message) -> Body:
    def body(ctx: Context, ref: str, value: object) -> None:
        current = ctx.record(m.cls, ref)[m.field]
        assert isinstance(current, list)
        if value not in current:
            with ctx.store.transaction() as tx:
                tx.update(m.cls, ref, {m.field: [*current, value]})

    return body


def _remove_from_set(m: Message) -> Body:
    def body(ctx: Context, ref: str, value: object) -> None:
        current = ctx.record(m.cls, ref)[m.field]
        assert isinstance(current, list)
        if value in current:
            with ctx.store.transaction() as tx:
                tx.update(m.cls, ref, {m.field: [v for v in current if v != value]})

    return body


def generic_body(m: Message, *, removed: bool = False) -> Body:
    """The body of an implicit message; `removed` for a getter of a Removed field."""
    match m.kind:
        case Kind.GET_ALL:
            return _get_all(m)
        case Kind.GET_ALL_RECORDS:
            return _get_all_records(m)
        case Kind.GET_RECORD:
            return _get_record(m)
        case Kind.GET_BY_UUID:
            return _get_by_uuid(m)
        case Kind.GET_BY_NAME_LABEL:
            return _get_by_name_label(m)
        case Kind.GET_FIELD:
            return _get_field(m, removed=removed)
        case Kind.SET_FIELD:
            return _set_field(m)
        case Kind.ADD_TO_MAP:
            return _add_to_map(m)
        case Kind.REMOVE_FROM_MAP:
            return _remove_from_map(m)
        case Kind.ADD_TO_SET:
            return _add_to_set(m)
        case Kind.REMOVE_FROM_SET:
            return _remove_from_set(m)
        case Kind.CUSTOM:
            raise ValueError(f"{m.wire_name} is not an implicit message")
