"""Round-robin databases as xcp-rrdd keeps and exports them: pure, no I/O, no clock."""

from xenmem.rrd.rrd import (
    HEARTBEAT_S,
    STEP_S,
    Cf,
    InvalidDataSourceError,
    NoArchiveAvailableError,
    Rrd,
    SourceSpec,
    add_source,
    copy,
    create,
    find_best_archives,
    query,
    update,
)
from xenmem.rrd.timescales import archives
from xenmem.rrd.updates import Updates, select, to_json, to_xml

__all__ = [
    "HEARTBEAT_S",
    "STEP_S",
    "Cf",
    "InvalidDataSourceError",
    "NoArchiveAvailableError",
    "Rrd",
    "SourceSpec",
    "Updates",
    "add_source",
    "archives",
    "copy",
    "create",
    "find_best_archives",
    "query",
    "select",
    "to_json",
    "to_xml",
    "update",
]
