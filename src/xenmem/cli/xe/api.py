"""The XenAPI as the CLI uses it: calls by wire name, records fetched once per command,
and long calls run as tasks with a progress bar on a terminal.

The SDK answers with untyped values (int64 as decimal strings); this module is where
they enter, so callers get `Any` here and narrow it at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import XenAPI

from xenmem.cli.xe.progress import Progress

__all__ = ["NOT_IN_DATABASE", "NULL_REF", "Api", "Record"]

NULL_REF = "OpaqueRef:NULL"
NOT_IN_DATABASE = "<not in database>"  # how xe shows a reference to nothing
Record = Mapping[str, Any]

# Classes whose records the CLI may need to show a reference as a uuid.
_FETCHABLE = frozenset({"VM", "VM_metrics", "host", "host_metrics", "pool"})
_POLL_SECONDS = 0.05


class Api:
    """One logged-in session, with a per-command cache of whole classes of records."""

    def __init__(self, session: Any, *, progress: Progress) -> None:
        self._xenapi = session.xenapi
        self._progress = progress
        self._records: dict[str, dict[str, Record]] = {}

    def call(self, wire_name: str, *args: object) -> Any:
        """`Class.message(args)` with the session first, as the SDK sends it."""
        target = self._xenapi
        for part in wire_name.split("."):
            target = getattr(target, part)
        return target(*args)

    def call_with_progress(self, wire_name: str, *args: object, label: str) -> None:
        """A void call run as `Async.` task; its progress shown while it runs.

        Raises the task's failure as the SDK would have raised the call's.
        """
        task = self.call(f"Async.{wire_name}", *args)
        try:
            with self._progress.bar(label) as show:
                record = self.call("task.get_record", task)
                while record["status"] == "pending":
                    show(float(record["progress"]))
                    time.sleep(_POLL_SECONDS)
                    record = self.call("task.get_record", task)
        finally:
            self.call("task.destroy", task)
        if record["status"] == "success":
            return
        if record["status"] == "failure":
            raise XenAPI.Failure(list(record["error_info"]) or ["INTERNAL_ERROR"])
        raise XenAPI.Failure(["TASK_CANCELLED", task])

    def all_records(self, cls: str) -> dict[str, Record]:
        """Every record of `cls` (ref → record), fetched on first use."""
        if cls not in self._records:
            self._records[cls] = dict(self.call(f"{cls}.get_all_records"))
        return self._records[cls]

    def record(self, cls: str, ref: str) -> Record | None:
        """The record `ref` points to, or None for NULL or an unknown or unfetchable class."""
        if cls not in _FETCHABLE or ref == NULL_REF:
            return None
        return self.all_records(cls).get(ref)

    def uuid_of(self, cls: str, ref: str) -> str:
        """A reference as xe shows it: the object's uuid, `<not in database>` for nothing."""
        record = self.record(cls, ref)
        if record is not None:
            return str(record["uuid"])
        return NOT_IN_DATABASE if ref in (NULL_REF, "") else ref

    def name_of_vm(self, ref: str) -> str:
        """A VM ref as a person reads it: its name-label, else its uuid."""
        record = self.record("VM", ref)
        if record is None:
            return ref
        return str(record["name_label"]) or str(record["uuid"])

    def describe_ref(self, ref: str) -> str:
        """An error parameter that is a VM or host ref, as xe shows it: `uuid (name)`."""
        for cls in ("VM", "host"):
            record = self.record(cls, ref)
            if record is not None:
                name = record.get("name_label", "")
                return f"{record['uuid']} ({name})" if name else str(record["uuid"])
        return ref
