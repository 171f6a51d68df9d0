"""``deepsearch mcp``: serve deep search to agents over MCP (:mod:`aggregator.mcp`).

stdio by default (stdout is the protocol: everything else goes to stderr); ``--http [HOST:]PORT`` serves
the streamable HTTP transport at ``http://HOST:PORT/mcp`` instead (HOST defaults to loopback). The same
settings, keys, sandbox default and journal as the other commands. Needs the ``mcp`` extra: without it
the command exits 2 saying how to install it.

``--metrics-port N`` serves Prometheus metrics (:mod:`aggregator.telemetry.metrics`) at
``http://127.0.0.1:N/metrics`` (``--metrics-host`` to listen elsewhere), from a thread that never writes
to stdout (the stdio transport); it needs the ``metrics`` extra.

Exit codes: 0 the client disconnected (or SIGINT/SIGTERM stopped the server: runs still going are
journaled as interrupted), 2 usage or configuration error (a metrics port out of range or in use, or
``--metrics-port`` without the ``metrics`` extra), or the ``mcp`` extra is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import sys
from pathlib import Path
from typing import Any

import click

from aggregator.cli._options import journal_option, target_options
from aggregator.cli._support import EXIT_USAGE, announce, err, journal_store, settings_for, usage_error
from aggregator.config import Settings
from aggregator.errors import ConfigError
from aggregator.journal import BufferedJournal
from aggregator.telemetry.cli import check_metrics_options, metrics_options, start_metrics

__all__ = ["mcp_command", "parse_address"]

INSTALL_HINT = "pip install 'deepsearch-aggregator[mcp]'"
LOOPBACK = "127.0.0.1"


def parse_address(value: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> ``(host, port)``; HOST defaults to loopback. Raises click.BadParameter."""
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]") if sep else LOOPBACK
    try:
        port = int(port_text)
    except ValueError:
        raise click.BadParameter(f"expected [HOST:]PORT, e.g. 127.0.0.1:8765, got {value!r}",
                                 param_hint="--http") from None
    if not 0 < port < 65536:
        raise click.BadParameter(f"port must be 1-65535, got {port}", param_hint="--http")
    return host or LOOPBACK, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("mcp")
@click.option("--http", "http", metavar="[HOST:]PORT", default=None,
              help="Serve the streamable HTTP transport at http://HOST:PORT/mcp (HOST default 127.0.0.1), not stdio.")
@target_options
@click.option("--config", type=click.Path(dir_okay=False), help="A TOML file over config/default.toml.")
@journal_option
@click.option("-v", "--verbose", count=True, help="-v info logs, -vv debug logs (stderr).")
@metrics_options
def mcp_command(http: str | None, sandbox: bool, live: bool, config: str | None, journal: Path | None,
                verbose: int, metrics_port: int | None, metrics_host: str | None) -> None:
    """Serve deep search to AI agents over MCP (stdio, or --http), with credit caps per call and session."""
    try:
        import mcp  # noqa: F401  (the optional extra)
    except ImportError:
        err.print(f"error: deepsearch mcp needs the MCP SDK, an optional extra: {INSTALL_HINT}",
                  highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    address = parse_address(http) if http is not None else None
    try:
        check_metrics_options(metrics_port, metrics_host)
        settings = settings_for(config, sandbox, live, verbose)
        store = journal_store(settings.database, journal)
        metrics_url = start_metrics(metrics_port, metrics_host)  # a thread of its own; never writes to stdout
    except ConfigError as exc:
        usage_error(exc)
    if metrics_url is not None:
        err.print(f"metrics at {metrics_url}", highlight=False, markup=False)
    if address is not None and not _is_loopback(address[0]):
        err.print(f"warning: serving MCP on {address[0]}, beyond this machine, without authentication: anyone who "
                  "reaches it can spend your credits", highlight=False, markup=False, soft_wrap=True)
    try:
        asyncio.run(_serve(settings, store, address))
    except ConfigError as exc:
        usage_error(exc)


async def _serve(settings: Settings, store: BufferedJournal, address: tuple[str, int] | None) -> None:
    from aggregator.mcp import serve  # the SDK loads only here

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop gracefully: running runs are journaled as interrupted
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]

    def ready(agg: Any) -> None:
        announce(agg)
        where = f"streamable HTTP at http://{address[0]}:{address[1]}/mcp" if address else "stdio"
        caps = settings.mcp
        err.print(f"deepsearch MCP server on {where}; credits: at most {caps.max_credits_per_call:g} per call and "
                  f"{caps.max_credits_per_session:g} per session ([mcp] in the config file)",
                  highlight=False, markup=False, soft_wrap=True)

    async with store:
        with contextlib.suppress(asyncio.CancelledError):
            await serve(settings, store, http=address, on_ready=ready)
