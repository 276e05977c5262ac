"""A XenAPI server assembled in this process, on the default simulated pool."""

from __future__ import annotations

from pathlib import Path

from xenmem.cli.pool import DEFAULT_POOL, simulated_pool
from xenmem.xenapi.app import ServerConfig, XenAPIServer, open_server

FAST = 10_000.0  # simulated seconds per real second: the hosts' boot sampling is instant


async def open_in_process(
    state_dir: Path, *, root_password: str = "pw", login_delay: float = 0.0
) -> XenAPIServer:
    """The server `xenmem serve` would assemble over `state_dir`, without serving HTTP
    and without background work."""
    config = ServerConfig(state_dir=state_dir, root_password=root_password, login_delay=login_delay)
    return await open_server(config, simulated_pool(DEFAULT_POOL, state_dir, FAST))
