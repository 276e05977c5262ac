"""`xenmem serve`: the XenAPI server for the pool, with its state in a directory."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import socket
import ssl
import sys
from pathlib import Path

import uvicorn

from xenmem.cli.pool import (
    DEFAULT_POOL,
    HostStateError,
    PoolFileError,
    load_pool_file,
    simulated_pool,
)
from xenmem.db.sqlite import private_dir
from xenmem.files import LockedError, hold_lock
from xenmem.toolstack.waiting import RetryPolicy
from xenmem.xenapi import ServerConfig, XenAPIApp, open_server
from xenmem.xenapi.app import PoolStarter
from xenmem.xenapi.connections import ConnectionLimits, guarded_protocol
from xenmem.xenapi.sessions import DEFAULT_SESSION_TIMEOUT
from xenmem.xenapi.tls import self_signed

__all__ = ["ROOT_PASSWORD_ENV", "listen", "register"]

ROOT_PASSWORD_ENV = "XENMEM_ROOT_PASSWORD"
DEFAULT_STATE_DIR = Path("xenmem-state")
# Held by the server for its life: two servers on one state would each admit VMs against
# their own books of the same hosts.
LOCK_FILENAME = "serve.lock"
_DEFAULT_LIMITS = ConnectionLimits()
# File descriptors beside the connections: the listener, the database and its journal,
# state files being written, the event loop's own.
_SPARE_FILES = 64


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid time scale {text!r}: expecting a number > 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: expecting seconds > 0")
    return value


def _wait_limit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid wait {text!r}: expecting seconds >= 0")
    return value


def _retry_delay(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        delays = (float(low), float(high))
    except ValueError:
        delays = (-1.0, -1.0)
    if not 0 <= delays[0] <= delays[1] < float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid retry delay {text!r}: expecting MIN,MAX seconds with 0 <= MIN <= MAX"
        )
    return delays


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: expecting an integer > 0")
    return value


def listen(address: str, port: int) -> socket.socket:
    """A listening TCP socket whose connections get TCP_NODELAY.

    asyncio only sets TCP_NODELAY on sockets whose protocol is IPPROTO_TCP; those from
    socket.create_server say 0, and the response's head and body, written separately,
    then wait out the client's 40 ms delayed ACK.
    """
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        address, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(sockaddr)
        listener.listen(1024)
    except OSError:
        listener.close()
        raise
    return listener


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the XenAPI (XML-RPC on any path, JSON-RPC on /jsonrpc)",
        description=f"root's password comes from ${ROOT_PASSWORD_ENV}; without it the first "
        "start generates one and prints it once.",
    )
    serve.add_argument("--listen", default="127.0.0.1", metavar="ADDRESS")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--state", type=Path, default=DEFAULT_STATE_DIR, metavar="DIR")
    serve.add_argument("--pool", type=Path, metavar="FILE.toml", help="the pool to simulate")
    serve.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        metavar="N",
        help="simulated seconds per real second (for the simulated hosts' clock)",
    )
    serve.add_argument(
        "--session-timeout",
        type=_seconds,
        default=DEFAULT_SESSION_TIMEOUT,
        metavar="SECONDS",
        help="end sessions idle for this long (default: 86400, a day, as xapi)",
    )
    xapi = RetryPolicy()
    serve.add_argument(
        "--operation-wait",
        type=_wait_limit,
        default=xapi.limit_s,
        metavar="SECONDS",
        help="how long a call waits for another operation on the same VM to end before "
        "answering OTHER_OPERATION_IN_PROGRESS; 0 answers at once (default: 7200, as xapi; "
        "seconds of the simulated hosts' clock, as --time-scale runs it)",
    )
    serve.add_argument(
        "--operation-retry-delay",
        type=_retry_delay,
        default=(xapi.min_delay_s, xapi.max_delay_s),
        metavar="MIN,MAX",
        help="a waiting call tries again after a random delay in [MIN, MAX] seconds, or as "
        "soon as an operation ends (default: 1,20, as xapi)",
    )
    connections = serve.add_argument_group(
        "connections",
        "a connection is closed when a client takes longer than this between requests or "
        "to send one; a call in progress is never cut",
    )
    connections.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=_DEFAULT_LIMITS.idle_timeout,
        metavar="SECONDS",
        help="for the next request to start, after connecting or after an answer "
        "(default: %(default)g)",
    )
    connections.add_argument(
        "--header-timeout",
        type=_seconds,
        default=_DEFAULT_LIMITS.header_timeout,
        metavar="SECONDS",
        help="for a request's headers, from their first byte (default: %(default)g)",
    )
    connections.add_argument(
        "--body-timeout",
        type=_seconds,
        default=_DEFAULT_LIMITS.body_timeout,
        metavar="SECONDS",
        help="for a request's body, after its headers (default: %(default)g)",
    )
    connections.add_argument(
        "--max-connections",
        type=_count,
        default=_DEFAULT_LIMITS.max_connections,
        metavar="N",
        help="open at once; more are answered HTTP 503 and closed (default: %(default)d)",
    )
    tls = serve.add_argument_group("HTTPS")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS; without --tls-cert, with a self-signed certificate generated on "
        "the first start and kept in the state directory",
    )
    tls.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate (chain)")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key")
    serve.set_defaults(run=lambda args: _run(args, serve))


def _tls_files(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with, or None for plain HTTP."""
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert is not None:
        files = (args.tls_cert, args.tls_key)
    elif args.tls:
        files = self_signed(args.state, args.listen)
    else:
        return None
    try:  # fail now, not after the pool has booted
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*files)
    except (OSError, ssl.SSLError) as error:
        parser.error(f"cannot use the TLS certificate {files[0]} and key {files[1]}: {error}")
    return files


def _lock_state(state_dir: Path, parser: argparse.ArgumentParser) -> None:
    try:
        private_dir(state_dir)
        hold_lock(state_dir / LOCK_FILENAME)
    except LockedError as error:
        holder = f"PID {error.holder}" if error.holder else "a process starting"
        parser.exit(
            1,
            f"{parser.prog}: error: the state directory {state_dir} is in use by another "
            f"xenmem serve ({holder})\n",
        )
    except OSError as error:
        parser.exit(1, f"{parser.prog}: error: cannot lock {state_dir}: {error.strerror}\n")


def _allow_files(connections: int, parser: argparse.ArgumentParser) -> None:
    """Raise the soft limit on open files as far as `connections` need, or refuse."""
    needed = connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    except (ValueError, OSError):
        parser.error(
            f"--max-connections {connections} needs {needed} open files, "
            f"more than this system allows (ulimit -Hn: {hard})"
        )


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        pool = DEFAULT_POOL if args.pool is None else load_pool_file(args.pool)
    except PoolFileError as error:
        parser.error(str(error))
    limits = ConnectionLimits(
        idle_timeout=args.idle_timeout,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
    )
    _allow_files(limits.max_connections, parser)
    _lock_state(args.state, parser)
    config = ServerConfig(
        state_dir=args.state,
        root_password=os.environ.get(ROOT_PASSWORD_ENV),
        session_timeout=args.session_timeout,
    )
    retry = RetryPolicy(
        min_delay_s=args.operation_retry_delay[0],
        max_delay_s=args.operation_retry_delay[1],
        limit_s=args.operation_wait,
    )
    start_pool = simulated_pool(pool, args.state, args.time_scale, retry)
    tls = _tls_files(args, parser)
    try:
        listener = listen(args.listen, args.port)
    except OSError as error:
        parser.error(f"cannot listen on {args.listen}:{args.port}: {error.strerror}")
    try:
        asyncio.run(_serve(config, start_pool, listener, tls, limits))
    except HostStateError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    return 0


async def _serve(
    config: ServerConfig,
    start_pool: PoolStarter,
    listener: socket.socket,
    tls: tuple[Path, Path] | None,
    limits: ConnectionLimits,
) -> None:
    print("xenmem: booting the pool's hosts", flush=True)
    server = await open_server(config, start_pool)
    server.runtime.start_background()
    server.collector.start()
    host, port = listener.getsockname()[:2]
    if server.generated_root_password is not None:
        print(
            f"xenmem: generated root's password (shown once, only its hash is stored): "
            f"{server.generated_root_password}"
        )
    scheme = "http" if tls is None else "https"
    print(
        f"xenmem: XenAPI at {scheme}://{host}:{port}/ (XML-RPC; JSON-RPC on /jsonrpc), "
        f"user root, state in {config.state_dir}/",
        flush=True,
    )
    uv_config = uvicorn.Config(
        XenAPIApp(server.dispatcher, rrd_updates=server.rrd_updates),
        http=guarded_protocol(limits),
        # uvicorn's wait after an answer (whole seconds): never before the idle timeout.
        timeout_keep_alive=math.ceil(limits.idle_timeout),
        log_level="warning",
        access_log=False,
        # event.from calls block for up to a minute; do not wait for them on shutdown.
        timeout_graceful_shutdown=1,
        ssl_certfile=None if tls is None else tls[0],
        ssl_keyfile=None if tls is None else tls[1],
    )
    try:
        await uvicorn.Server(uv_config).serve(sockets=[listener])
    finally:
        await server.collector.stop()
        await server.runtime.stop()
        server.conn.close()
        sys.stdout.flush()
