"""``deepsearch sandbox serve``: run the provider emulators standalone.

A standalone sandbox outlives the clients that use it, which is what resuming a sandbox run needs:
``--connection-file F`` writes its URLs, keys, time scale, clock epoch and world (``"hard"`` with
``--world hard``, the seed and size) to ``F``, and a client
started with ``DEEPSEARCH_SANDBOX=F`` (or ``[sandbox] connection_file``) attaches to it instead of
starting its own. ``--faults`` injects faults (a JSON list, or TOML ``[[faults]]`` tables, of
:class:`providers.sandbox.faults.FaultRule` fields) for soak and resilience demos.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from aggregator.cli._support import configure_logging, err, usage_error
from aggregator.config import ProviderSettings, SandboxSettings, load_settings
from aggregator.errors import ConfigError

if TYPE_CHECKING:
    from providers.sandbox.faults import FaultRule
    from providers.sandbox.runner import SandboxConfig, SandboxConnection

__all__ = ["STOP_SIGNALS", "client_environment", "load_faults", "remove_connection_file", "sandbox"]


def load_faults(path: Path) -> tuple[FaultRule, ...]:
    """Fault rules from a JSON list (or ``{"faults": [...]}``) or TOML ``[[faults]]`` tables.

    Raises:
        ConfigError: unreadable file, or an entry that is not a valid rule (named ``--faults[i]``).
    """
    from providers.sandbox.faults import FaultRule

    try:
        raw = path.read_bytes()
        data: Any = tomllib.loads(raw.decode()) if path.suffix.lower() == ".toml" else orjson.loads(raw)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, orjson.JSONDecodeError) as exc:
        raise ConfigError("--faults", f"cannot read {path}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("faults")
    if not isinstance(data, list):
        raise ConfigError("--faults", "expected a list of fault rules ({provider, endpoint, kind, rate, ...})")
    names = {f.name for f in dataclasses.fields(FaultRule)}
    rules = []
    for i, entry in enumerate(data):
        unknown = sorted(set(entry) - names) if isinstance(entry, dict) else []
        if not isinstance(entry, dict) or unknown or "provider" not in entry:
            raise ConfigError(f"--faults[{i}]", f"expected a table with 'provider' and fields of {sorted(names)}"
                              + (f"; unknown: {unknown}" if unknown else ""))
        rules.append(FaultRule(**entry))
    return tuple(rules)


@click.group()
def sandbox() -> None:
    """The local provider emulators."""


@sandbox.command("serve")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="Wall seconds per provider second, in (0, 1]. 1 is real time: every duration, TTL, "
                   "Retry-After and timestamp is what the providers document, for any HTTP client. A smaller "
                   "scale runs faster, but only clients that share the sandbox clock through "
                   "--connection-file (deepsearch itself, its tests) see those values in their units.")
@click.option("--seed", type=int, default=None)
@click.option("--world", type=click.Choice(["default", "hard"]), default=None,
              help="hard: the providers disagree like real ones (job changes, nicknames, renames, namesakes); "
                   "default: [sandbox] world.")
@click.option("--port", "ports", multiple=True, help="PROVIDER=PORT (repeatable); default ephemeral.")
@click.option("--connection-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write URLs, keys, clock and world here; clients attach with DEEPSEARCH_SANDBOX=FILE.")
@click.option("--faults", "faults_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Inject faults: a JSON/TOML list of rules {provider, endpoint, kind, rate|first_n, ...}.")
@click.option("-v", "--verbose", count=True)
def serve(time_scale: float, seed: int | None, world: str | None, ports: tuple[str, ...],
          connection_file: Path | None, faults_file: Path | None, verbose: int) -> None:
    """Run the emulators standalone until Ctrl-C (or SIGTERM) and print their base URLs and keys."""
    from providers.sandbox.runner import serve as serve_sandbox

    configure_logging(verbose)
    try:
        all_settings = load_settings()
    except ConfigError as exc:
        usage_error(exc)
    if world is not None:
        all_settings = all_settings.model_copy(
            update={"sandbox": all_settings.sandbox.model_copy(update={"world": world})})
    config = _config(all_settings.sandbox, time_scale, seed, ports, faults_file)

    def ready(connection: SandboxConnection) -> None:
        _announce(connection, connection_file, all_settings.providers, config.time_scale)

    stopped_by = None
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C while it starts, before the loop handles it
            stopped_by = asyncio.run(serve_sandbox(config, on_ready=ready, stop_on=STOP_SIGNALS))
    except ConfigError as exc:
        usage_error(exc)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        usage_error(ConfigError("--port", f"cannot listen: {exc.strerror or exc}"))  # e.g. the port is taken
    finally:
        if connection_file is not None:
            remove_connection_file(connection_file)
    err.print(f"sandbox stopped ({stopped_by.name if stopped_by else 'interrupted'})", highlight=False)


def _config(settings: SandboxSettings, time_scale: float, seed: int | None, ports: tuple[str, ...],
            faults_file: Path | None) -> SandboxConfig:
    """The sandbox ``serve`` runs: the flags over the ``[sandbox]`` settings. Exits 2 on a bad flag.

    ``[sandbox] time_scale`` is the in-process sandbox's (its only client shares its clock); a
    standalone sandbox is for any client, so it runs in real time unless ``--time-scale`` says otherwise.
    """
    from providers.sandbox.disagreements import DisagreementRates
    from providers.sandbox.runner import SandboxConfig, emulated

    port_map: dict[str, int] = {}
    for item in ports:
        name, _, port = item.partition("=")
        if name not in emulated() or not port.isdigit():
            raise click.BadParameter(f"expected PROVIDER=PORT with PROVIDER in {sorted(emulated())}",
                                     param_hint="--port")
        port_map[name] = int(port)
    scale = time_scale
    if not 0 < scale <= 1:
        raise click.BadParameter("must be in (0, 1]", param_hint="--time-scale")
    try:
        faults = load_faults(faults_file) if faults_file is not None else ()
    except ConfigError as exc:
        usage_error(exc)
    return SandboxConfig(time_scale=scale, seed=settings.seed if seed is None else seed,
                         n_companies=settings.n_companies, faults=faults, providers=emulated(), ports=port_map,
                         disagreements=DisagreementRates.hard() if settings.world == "hard" else None)


def _announce(connection: SandboxConnection, connection_file: Path | None,
              providers: Mapping[str, ProviderSettings], scale: float) -> None:
    """Print where each emulator listens (stdout) and how any client reaches it (stderr); write the
    connection file. Raises ConfigError when the file cannot be written."""
    for name, url in connection.base_urls.items():
        click.echo(f"{name}\t{url}", nl=True)
    if connection_file is not None:
        try:
            connection.write(connection_file)
        except OSError as exc:
            raise ConfigError("--connection-file", f"cannot write {connection_file}: {exc.strerror or exc}") from exc
        err.print(f"connection file: {connection_file} (attach with DEEPSEARCH_SANDBOX={connection_file})",
                  highlight=False, markup=False, soft_wrap=True)
    err.print("sandbox keys (synthetic, valid only here); any HTTP client can call the emulators with:",
              highlight=False, markup=False, soft_wrap=True)
    for line in client_environment(connection, providers):
        err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    pace = ("real time" if scale == 1 else
            f"{1 / scale:g}x real time: durations, TTLs and Retry-After hold only for clients on its clock")
    err.print(f"sandbox ready (time scale {scale:g}, {pace}); Ctrl-C to stop", highlight=False)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that stop ``sandbox serve`` cleanly (its connection file is removed); SIGKILL cannot be
caught, which is why a client attaching to a file whose sandbox is gone is told so."""


def client_environment(connection: SandboxConnection, providers: Mapping[str, ProviderSettings]) -> list[str]:
    """One line per emulator: the environment variables that point a client at it, e.g.
    ``SIXTYFOUR_BASE_URL=http://127.0.0.1:PORT SIXTYFOUR_API_KEY=sandbox-sixtyfour-key-1``.

    The keys are the sandbox's own (synthetic; no real provider accepts them). A provider without
    settings gets ``NAME: URL KEY``.
    """
    lines = []
    for name, url in connection.base_urls.items():
        key = connection.api_keys.get(name, "")
        spec = providers.get(name)
        lines.append(f"{spec.base_url_env}={url} {spec.api_key_env}={key}" if spec is not None
                     else f"{name}: {url} {key}")
    return lines


def remove_connection_file(path: Path) -> None:
    """Remove ``path`` (and a half-written ``.tmp``) if this process wrote it; another live sandbox's
    file at the same path (this one failed to start) is left alone."""
    from providers.sandbox.runner import SandboxConnection

    path.with_name(path.name + ".tmp").unlink(missing_ok=True)
    try:
        ours = SandboxConnection.read(path).pid == os.getpid()
    except ValueError:  # missing, or not a connection file: not ours to delete
        return
    if ours:
        path.unlink(missing_ok=True)
