"""host and VM get_data_sources / query_data_source, read from the pool's RRDs.

xapi asks xcp-rrdd, whose failures reach the client as INTERNAL_ERROR with the printed
exception; the texts here follow that form (`Rrd_interface.Rrdd_error([...])`).
"""

from __future__ import annotations

from collections.abc import Callable

from xenmem.errors import INTERNAL_ERROR, XenAPIError
from xenmem.rrd import InvalidDataSourceError
from xenmem.toolstack.context import Context, implements
from xenmem.toolstack.rrdd import DatasourceMissingError, SourceDescription

__all__ = [
    "host_get_data_sources",
    "host_query_data_source",
    "vm_get_data_sources",
    "vm_query_data_source",
]


def _record(source: SourceDescription) -> dict[str, object]:
    """A data_source record; its value is always 0, as xapi's."""
    return {
        "name_label": source.name,
        "name_description": source.description,
        "enabled": source.enabled,
        "standard": source.standard,
        "units": source.units,
        "min": source.minimum,
        "max": source.maximum,
        "value": 0.0,
    }


def _rrdd_error(variant: str, detail: str) -> XenAPIError:
    return INTERNAL_ERROR(f"Rrd_interface.Rrdd_error([S({variant});S({detail})])")


@implements("host.get_data_sources")
def host_get_data_sources(ctx: Context, host: str) -> list[dict[str, object]]:
    return [_record(s) for s in ctx.pool.rrdd.host_sources(ctx.host(host).uuid)]


@implements("VM.get_data_sources")
def vm_get_data_sources(ctx: Context, vm: str) -> list[dict[str, object]]:
    return [_record(s) for s in ctx.pool.rrdd.vm_sources(ctx.vm(vm).uuid)]


def _queried(query: Callable[[str, str], float], uuid: str, name: str) -> float:
    try:
        return query(uuid, name)
    except DatasourceMissingError as error:
        raise _rrdd_error("Datasource_missing", str(error)) from error
    except InvalidDataSourceError as error:
        detail = f'Rrd.Invalid_data_source("{error.name}")'
        raise _rrdd_error("Rrdd_internal_error", detail) from error


@implements("host.query_data_source")
def host_query_data_source(ctx: Context, host: str, data_source: str) -> float:
    return _queried(ctx.pool.rrdd.query_host, ctx.host(host).uuid, data_source)


@implements("VM.query_data_source")
def vm_query_data_source(ctx: Context, vm: str, data_source: str) -> float:
    return _queried(ctx.pool.rrdd.query_vm, ctx.vm(vm).uuid, data_source)
