"""A pool on the virtual clock, driven through the message bodies as dispatch calls them."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

import pytest

from tests.support import simulated
from xenmem.cli.pool import start_simulated_pool
from xenmem.db import Record, Store
from xenmem.errors import XenAPIError
from xenmem.toolstack import MESSAGES, Context
from xenmem.toolstack.ledger import PARTS
from xenmem.toolstack.pool import PoolHost, PoolSpec
from xenmem.toolstack.runtime import PoolRuntime
from xenmem.toolstack.waiting import RetryPolicy
from xenmem.xen import VirtualClock
from xenmem.xenapi.model import INDEXES, MODEL, RELATIONS, SUMS, decode_record, schemas

BALANCE_INTERVAL_S = 10.0
MIB = 2**20
GIB = 2**30


def small_pool(*, hosts: int = 2, memory: int = 16 * GIB, dmc: bool = True) -> PoolSpec:
    return PoolSpec(
        name="test",
        dmc=dmc,
        hosts=tuple(
            PoolHost(name=f"h{i}", memory=memory, cpus=8, dom0_memory=GIB, xen_memory=512 * MIB)
            for i in range(1, hosts + 1)
        ),
    )


async def body(ctx: Context, name: str, *args: object) -> object:
    """Run a message's body as dispatch does: awaited when it is a coroutine."""
    result = MESSAGES[name](ctx, *args)
    return await result if inspect.iscoroutine(result) else result


class Pool:
    """The store, the running pool and a context to call messages with."""

    def __init__(self, spec: PoolSpec, *, retry: RetryPolicy | None = None) -> None:
        self.clock = VirtualClock()
        self.store = Store(schemas(), relations=RELATIONS, indexes=INDEXES, sums=SUMS)
        self.runtime: PoolRuntime = asyncio.run(
            start_simulated_pool(self.store, spec, self.clock, draw=lambda: 0.0, retry=retry)
        )
        self.ctx = Context(store=self.store, runtime=self.runtime)
        self.hosts = sorted(
            self.store.records("host"), key=lambda h: str(self.record("host", h)["name_label"])
        )

    def call(self, name: str, *args: Any) -> Any:
        """Run a message's body; an error it raises must be one its datamodel entry declares."""
        return asyncio.run(self.call_async(name, *args))

    async def call_async(self, name: str, *args: Any) -> Any:
        """`call` on the running event loop, beside other calls."""
        try:
            result = MESSAGES[name](self.ctx, *args)
            return await result if inspect.iscoroutine(result) else result
        except XenAPIError as error:
            assert MODEL.messages[name].declares(error), f"{name} raised undeclared {error}"
            raise

    def error(self, name: str, *args: Any) -> list[str]:
        with pytest.raises(XenAPIError) as caught:
            self.call(name, *args)
        return caught.value.description

    def record(self, cls: str, ref: str) -> Record:
        record = self.store.get(cls, ref)
        assert record is not None
        return record

    def vm(self, *, other_config: Mapping[str, str] | None = None, **fields: object) -> str:
        """A halted HVM VM: 1 GiB static_min, 2-4 GiB dynamic, 4 GiB static_max, 2 vCPUs."""
        record = decode_record(
            "VM",
            {
                "name_label": "vm",
                "HVM_boot_policy": "BIOS order",
                "memory_static_min": GIB,
                "memory_dynamic_min": 2 * GIB,
                "memory_dynamic_max": 4 * GIB,
                "memory_static_max": 4 * GIB,
                "VCPUs_max": 2,
                "VCPUs_at_startup": 2,
                "other_config": {"xenmem_boot_seconds": "0", **(other_config or {})},
                **fields,
            },
        )
        return str(self.call("VM.create", record))

    def advance(self, seconds: float) -> None:
        """Let simulated time pass, with squeezed's periodic balance every 10 s as in serving."""
        end = self.clock.now() + seconds
        while True:
            self.clock.advance(min(BALANCE_INTERVAL_S, max(0.0, end - self.clock.now())))
            for agent in self.runtime.agents.values():
                asyncio.run(agent.memory.periodic_check())
            if self.clock.now() >= end:
                break
        self.runtime.refresh()

    def int_field(self, cls: str, ref: str, name: str) -> int:
        value = self.record(cls, ref)[name]
        assert isinstance(value, int)
        return value

    def free(self, host: str) -> int:
        return int(self.call("host.compute_free_memory", host))

    def expected_free(self, host: str) -> int:
        """§4.2 from the records alone: total - overhead - Σ (dynamic_min + overhead)."""
        metrics = str(self.record("host", host)["metrics"])
        total = self.int_field("host_metrics", metrics, "memory_total")
        free = total - self.int_field("host", host, "memory_overhead")
        for vm, record in self.store.records("VM").items():
            for placement in ("resident_on", "scheduled_to_be_resident_on"):
                if record[placement] == host:
                    free -= self.int_field("VM", vm, "memory_dynamic_min")
                    free -= self.int_field("VM", vm, "memory_overhead")
        return max(0, free)

    def assert_consistent(self) -> None:
        """The invariants every step keeps: no overcommit, §4.2, placement, the ledger."""
        for host in self.hosts:
            agent = self.runtime.agent(host)
            assert simulated(agent).faults == []
            assert simulated(agent).physinfo().free_kib >= 0
            assert self.free(host) == self.expected_free(host)
            metrics = str(self.record("host", host)["metrics"])
            total = self.int_field("host_metrics", metrics, "memory_total")
            committed = sum(
                self.int_field("VM", vm, "memory_dynamic_min")
                + self.int_field("VM", vm, "memory_overhead")
                for vm, record in self.store.records("VM").items()
                if host in (record["resident_on"], record["scheduled_to_be_resident_on"])
            )
            assert committed <= total - self.int_field("host", host, "memory_overhead")
            ledger = self.call("host.get_memory_ledger", host)
            parts = sum(ledger[p] for p in PARTS) + sum(
                v
                for k, v in ledger.items()
                if k.endswith((":ram", ":overhead")) and k.startswith("vm:")
            )
            assert parts == ledger["total"] == total
            assert ledger["unaccounted"] == ledger["other_domains"] == 0
            assert set(agent.domains.resident) == {
                vm
                for vm, r in self.store.records("VM").items()
                if r["resident_on"] == host and not r["is_control_domain"]
            }
        for record in self.store.records("VM").values():
            if record["power_state"] in ("Halted", "Suspended"):
                assert record["resident_on"] == "OpaqueRef:NULL"
            assert record["scheduled_to_be_resident_on"] == "OpaqueRef:NULL"
            assert record["current_operations"] == {}
