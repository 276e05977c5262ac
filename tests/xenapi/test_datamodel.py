"""The datamodel is consistent, and everything served derives from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.in_process import open_in_process
from xenmem import toolstack
from xenmem.xenapi.app import message_bodies
from xenmem.xenapi.datamodel import (
    REQUIRED,
    ClassDef,
    Field,
    Kind,
    Message,
    Model,
    Param,
    dro,
    rw,
    sro,
)
from xenmem.xenapi.datamodel_session import EVENT
from xenmem.xenapi.model import MODEL, decode_record
from xenmem.xenapi.roles import POOL_ADMIN, READ_ONLY, ROLES, VM_ADMIN, at_least
from xenmem.xenapi.types import INT, STRING, Map, Ref, Set


def test_the_served_model_loads_and_checks() -> None:
    MODEL.check()
    assert {cd.name for cd in MODEL.classes} == {
        "pool",
        "host",
        "host_metrics",
        "VM",
        "VM_metrics",
        "session",
        "task",
        "event",
        "data_source",
    }


def test_implicit_messages_follow_the_qualifiers() -> None:
    vm = MODEL.cls("VM")
    for f in vm.fields:
        assert MODEL.messages[f"VM.get_{f.name}"].kind is Kind.GET_FIELD
        setter = MODEL.messages.get(f"VM.set_{f.name}")
        generated = setter is not None and setter.kind is Kind.SET_FIELD
        assert generated is (f.qualifier == "RW")
    assert MODEL.messages["VM.add_to_other_config"].kind is Kind.ADD_TO_MAP
    assert MODEL.messages["VM.add_tags"].kind is Kind.ADD_TO_SET
    # Memory limits are StaticRO: their setters are dedicated messages with xapi's rules.
    assert MODEL.messages["VM.set_memory_static_max"].kind is Kind.CUSTOM
    assert "host_metrics.get_by_name_label" not in MODEL.messages  # no name_label there
    assert "session.get_all" not in MODEL.messages
    assert not any(
        name.startswith("event.get_") and name != "event.get_current_id" for name in MODEL.messages
    )


def test_aliases_are_generated_from_class_message_pairs() -> None:
    assert MODEL.resolve("event_from") is MODEL.messages["event.from"]
    assert (
        MODEL.resolve("VM_metrics_get_memory_actual")
        is MODEL.messages["VM_metrics.get_memory_actual"]
    )
    assert MODEL.resolve("VM_metrics.get_memory_actual") is not None
    assert MODEL.resolve("VM.metrics_get_memory_actual") is None


def test_every_message_has_exactly_one_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = asyncio.run(open_in_process(tmp_path))
    sessions, events, tasks = server.sessions, server.events, server.tasks
    assert set(server.bodies) == set(MODEL.messages)
    custom = {n for n, m in MODEL.messages.items() if m.kind is Kind.CUSTOM}
    assert set(toolstack.MESSAGES) <= custom
    monkeypatch.delitem(toolstack.MESSAGES, "VM.create")
    with pytest.raises(ValueError, match=r"without a body: \['VM.create'\]"):
        message_bodies(sessions, events, tasks)
    monkeypatch.setitem(toolstack.MESSAGES, "VM.create", lambda ctx, args: "")
    monkeypatch.setitem(toolstack.MESSAGES, "VM.frobnicate", lambda ctx: "")
    with pytest.raises(ValueError, match=r"without a message: \['VM.frobnicate'\]"):
        message_bodies(sessions, events, tasks)
    server.conn.close()


def test_memory_fields_match_the_spec() -> None:
    vm = MODEL.cls("VM")
    for name in (
        "memory_static_min",
        "memory_static_max",
        "memory_dynamic_min",
        "memory_dynamic_max",
        "VCPUs_max",
        "VCPUs_at_startup",
    ):
        assert vm.field(name).default is REQUIRED
        assert vm.field(name).qualifier == "StaticRO"
    assert vm.field("memory_overhead").qualifier == "DynamicRO"
    assert vm.field("HVM_shadow_multiplier").initial == 1.0
    assert vm.field("domain_type").initial == "unspecified"
    assert MODEL.cls("host_metrics").field("memory_free").removed
    assert MODEL.messages["host.compute_free_memory"].roles == at_least(READ_ONLY)
    assert MODEL.messages["VM.create"].roles == at_least(VM_ADMIN)
    assert MODEL.messages["VM.compute_memory_overhead"].is_async


def test_decode_record_fills_defaults_and_requires_memory() -> None:
    record = decode_record(
        "VM",
        {
            "memory_static_min": "1",
            "memory_static_max": "2",
            "memory_dynamic_min": 1,
            "memory_dynamic_max": 2,
            "VCPUs_max": "1",
            "VCPUs_at_startup": 1,
            "is_a_snapshot": True,
            "bogus": "ignored",
        },
    )
    assert record["memory_static_max"] == 2
    assert record["actions_after_crash"] == "restart"
    assert "is_a_snapshot" not in record  # DynamicRO: not the constructor's to set
    assert "bogus" not in record
    with pytest.raises(Exception, match="missing field VCPUs_max"):
        decode_record(
            "VM",
            {
                "memory_static_min": 1,
                "memory_static_max": 2,
                "memory_dynamic_min": 1,
                "memory_dynamic_max": 2,
            },
        )


def _model(*fields: Field, messages: tuple[Message, ...] = ()) -> Model:
    cd = ClassDef(
        name="thing",
        fields=(dro("uuid", STRING), *fields),
        messages=messages,
    )
    return Model(classes=(cd,))


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: _model(rw("x", STRING), rw("x", INT)), "declared twice"),
        (lambda: _model(dro("x", INT, REQUIRED)), "needs a default"),
        (lambda: _model(rw("x", Ref("nowhere"))), "unknown class"),
        (lambda: _model(rw("x", Map(STRING, Set(Ref("nowhere"))))), "unknown class"),
        (
            lambda: _model(
                messages=(Message(cls="thing", name="f", roles=frozenset({POOL_ADMIN, READ_ONLY})),)
            ),
            "a role and all above it",
        ),
        (
            lambda: _model(messages=(Message(cls="thing", name="f", roles=frozenset({"god"})),)),
            "bad roles",
        ),
        (
            lambda: _model(
                messages=(
                    Message(
                        cls="thing",
                        name="f",
                        params=(
                            Param(name="a", type=STRING, default=""),
                            Param(name="b", type=STRING),
                        ),
                    ),
                )
            ),
            "after an optional",
        ),
        (lambda: _model(messages=(Message(cls="thing", name="get_uuid"),)), "declared twice"),
        (lambda: Model(classes=(ClassDef(name="x", fields=(sro("a", INT),)),)), "no uuid"),
    ],
)
def test_inconsistent_models_are_refused(build: Callable[[], Model], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build()


def test_roles_are_ordered_by_strength() -> None:
    assert ROLES[0] == POOL_ADMIN
    assert at_least(READ_ONLY) == frozenset(ROLES)
    assert at_least(POOL_ADMIN) == {POOL_ADMIN}


def test_event_class_has_no_records() -> None:
    assert not EVENT.database
