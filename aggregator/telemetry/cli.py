"""``--metrics-port`` / ``--metrics-host`` of the long-running commands (``deepsearch worker``, ``deepsearch mcp``).

The metrics server is prometheus-client's own (``start_http_server``: a daemon thread serving
``/metrics``); it writes nothing to stdout, so the MCP server's stdio transport stays clean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from aggregator.errors import ConfigError
from aggregator.telemetry.metrics import INSTALL_HINT, require_client, serve_metrics

__all__ = ["check_metrics_options", "metrics_options", "start_metrics"]

LOOPBACK = "127.0.0.1"
F = TypeVar("F", bound=Callable[..., object])


def metrics_options(fn: F) -> F:
    """Adds ``--metrics-port N`` (1-65535) and ``--metrics-host HOST`` (default loopback)."""
    fn = click.option("--metrics-host", "metrics_host", default=None, metavar="HOST",
                      help=f"Address the metrics server listens on (default {LOOPBACK}; needs --metrics-port).")(fn)
    return click.option("--metrics-port", "metrics_port", type=click.IntRange(1, 65535), default=None, metavar="N",
                        help="Serve Prometheus metrics at http://127.0.0.1:N/metrics (needs the metrics extra: "
                             f"{INSTALL_HINT}).")(fn)


def check_metrics_options(port: int | None, host: str | None) -> None:
    """Refuse what cannot apply, before anything starts.

    Raises:
        ConfigError: ``--metrics-host`` without ``--metrics-port``; ``--metrics-port`` without prometheus-client
            (the message names ``pip install 'deepsearch-aggregator[metrics]'``).
    """
    if port is None:
        if host is not None:
            raise ConfigError("--metrics-host", "applies only with --metrics-port N (no metrics are served without "
                                                "it)")
        return
    try:
        require_client()
    except ConfigError as exc:
        raise ConfigError("--metrics-port", exc.problem) from None


def start_metrics(port: int | None, host: str | None) -> str | None:
    """Enable the metrics and serve them (after :func:`check_metrics_options`); their URL, or None without
    ``--metrics-port``.

    Raises:
        ConfigError: the address cannot be bound (in use, or not this machine's).
    """
    if port is None:
        return None
    where = host or LOOPBACK
    try:
        serve_metrics(port, where)
    except ConfigError as exc:
        raise ConfigError("--metrics-port", exc.problem) from None
    shown = f"[{where}]" if ":" in where else where
    return f"http://{shown}:{port}/metrics"
