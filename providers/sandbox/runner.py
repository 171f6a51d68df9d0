"""Start the provider emulators on local sockets: :class:`Sandbox` and :func:`serve` (design §4).

One aiohttp application per provider, each on its own ``127.0.0.1`` port, all sharing one clock
(virtual seconds, :class:`~aggregator.clock.ScaledClock` by default), one synthetic world, one
fault injector and one key registry. Emulators are looked up lazily by import string in
:func:`emulated` (each provider spec's ``emulator``), imported only when that provider starts.

Usage::

    async with Sandbox(SandboxConfig(n_companies=400, time_scale=0.002)) as sandbox:
        url = sandbox.base_urls["sixtyfour"]; key = sandbox.api_key("sixtyfour")
        ...
        assert sandbox.stats()["providers"]["sixtyfour"]["jobs_started"] == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from aggregator.clock import Clock, ScaledClock
from aggregator.log import get_logger
from providers.sandbox.context import EmulatorApp, KeyRegistry, SandboxContext, seeded_ids
from providers.sandbox.disagreements import DisagreementRates
from providers.sandbox.faults import FaultInjector, FaultRule
from providers.sandbox.stats import RecordedRequest, StatsRecorder
from providers.sandbox.world import World, build_world
from providers.spec import resolve

__all__ = ["AttachedSandbox", "Sandbox", "SandboxConfig", "SandboxConnection", "emulated", "serve"]

log = get_logger(__name__)

def emulated() -> tuple[str, ...]:
    """The registered providers that have a sandbox emulator, in registry order."""
    from providers import REGISTRY

    return tuple(name for name, spec in REGISTRY.items() if spec.emulator is not None)


@dataclass
class SandboxConfig:
    """How to run the sandbox.

    Attributes:
        time_scale: wall seconds per virtual second (``ScaledClock``), ``0 < x <= 1``.
        seed: world and RNG seed.
        n_companies: world size (people scale with it).
        providers: which emulators to start (names from :func:`emulated`).
        faults: fault rules active from the start.
        settings: per-provider emulator setting overrides, ``{"sixtyfour": {"queue_s": 1}}``.
        host: interface to bind.
        ports: fixed port per provider; 0 or absent = ephemeral.
        id_seed: None (default) gives every instance its own random ids and signing secret, as a
            real service's are never reused; a string makes them repeatable (tests only).
        disagreements: the hard world's rates (:class:`~providers.sandbox.disagreements.DisagreementRates`,
            e.g. ``DisagreementRates.hard()``): providers render some entities differently (job changes,
            nicknames, renames...); None (default) is the consistent world. Views change what an emulator
            renders, not which entities its search matches.
    """

    time_scale: float = 0.02
    seed: int = 7
    n_companies: int = 4000
    providers: tuple[str, ...] = ("sixtyfour",)
    faults: tuple[FaultRule, ...] = ()
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    id_seed: str | None = None
    disagreements: DisagreementRates | None = None


def _load_factory(provider: str) -> Callable[[SandboxContext, Mapping[str, Any]], EmulatorApp]:
    from providers import REGISTRY

    spec = REGISTRY.get(provider)
    if spec is None or spec.emulator is None:
        raise ValueError(f"no sandbox emulator for provider {provider!r}; known: {sorted(emulated())}")
    factory: Callable[[SandboxContext, Mapping[str, Any]], EmulatorApp] = resolve(spec.emulator)
    return factory


@dataclass(frozen=True)
class SandboxConnection:
    """How a client in another process reaches a standalone sandbox.

    ``deepsearch sandbox serve --connection-file PATH`` writes it (JSON); a client attaches with
    ``DEEPSEARCH_SANDBOX=PATH`` (:class:`AttachedSandbox`). Sharing ``epoch`` and ``time_scale``
    gives both processes the same virtual time (:class:`~aggregator.clock.ScaledClock`), so
    Retry-After, rate-limit windows, deadlines and ``created_at`` comparisons agree.

    Attributes:
        base_urls: provider -> ``"http://127.0.0.1:<port>"``.
        api_keys: provider -> a valid sandbox key (synthetic; never a real provider's key).
        time_scale: wall seconds per virtual second.
        epoch: the real instant the sandbox's virtual clock started.
        pid: the serving process.
        world: ``"default"`` (the consistent world) or ``"hard"`` (the providers disagree,
            :mod:`providers.sandbox.disagreements`); a file without it (older sandboxes) is ``"default"``.
        rates: the hard world's disagreement rates when they are not the ``hard`` preset, else None.
        seed, n_companies: the world's seed and size (None in older files), so a client can rebuild
            the same world to score against (:attr:`AttachedSandbox.world`).
    """

    base_urls: dict[str, str]
    api_keys: dict[str, str]
    time_scale: float
    epoch: datetime
    pid: int
    world: str = "default"
    rates: dict[str, float] | None = None
    seed: int | None = None
    n_companies: int | None = None

    @staticmethod
    def world_of(rates: DisagreementRates | None) -> tuple[str, dict[str, float] | None]:
        """``(world, rates)`` as the file records them: ``("default", None)``, ``("hard", None)`` for
        the preset, ``("hard", {kind: rate})`` for other rates."""
        if rates is None or not rates.active:
            return "default", None
        return "hard", None if rates == DisagreementRates.hard() else dataclasses.asdict(rates)

    def disagreements(self) -> DisagreementRates | None:
        """The sandbox world's disagreement rates (None: the consistent world)."""
        if self.world != "hard":
            return None
        return DisagreementRates(**self.rates) if self.rates is not None else DisagreementRates.hard()

    def clock(self) -> ScaledClock:
        """A clock in step with the sandbox's."""
        return ScaledClock(self.time_scale, epoch=self.epoch)

    def write(self, path: Path) -> None:
        """Write the file atomically (a reader never sees half of it)."""
        doc: dict[str, Any] = {"base_urls": self.base_urls, "api_keys": self.api_keys, "time_scale": self.time_scale,
                               "epoch": self.epoch.isoformat(), "pid": self.pid, "world": self.world,
                               "seed": self.seed, "n_companies": self.n_companies}
        if self.rates is not None:
            doc["rates"] = self.rates
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    async def gone(self, timeout_s: float = 1.0) -> str | None:
        """Why the sandbox this file describes is not running, or None when it answers.

        Gone when its process (``pid``, on this machine) has exited, or when one of its ports refuses
        a connection (a ``kill -9``, a reboot: the file outlives the sandbox). A port that accepts
        within ``timeout_s`` counts as running.
        """
        if os.name == "posix":
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return f"its process {self.pid} has exited"
            except PermissionError:
                pass  # alive, run by another user
        for provider, url in self.base_urls.items():
            parts = urlsplit(url)
            try:
                async with asyncio.timeout(timeout_s):
                    _, writer = await asyncio.open_connection(
                        parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            except TimeoutError:  # before OSError, its base class
                return f"its {provider} emulator at {url} does not answer within {timeout_s:g} s"
            except ConnectionRefusedError:
                return f"its {provider} emulator at {url} refuses connections"
            except OSError as exc:
                return f"its {provider} emulator at {url} cannot be reached: {exc}"
        return None

    @classmethod
    def read(cls, path: Path) -> SandboxConnection:
        """Read a connection file.

        Raises:
            ValueError: the file is missing, not JSON, lacks a field (the message names it), or records
                an unknown world or invalid rates.
        """
        try:
            doc = orjson.loads(path.read_bytes())
            world = str(doc.get("world", "default"))
            if world not in ("default", "hard"):
                raise ValueError(f"world must be 'default' or 'hard', got {world!r}")
            rates = doc.get("rates")
            if rates is not None:
                DisagreementRates.parse(dict(rates))  # unknown kinds, rates outside [0, 1]
            seed, n_companies = doc.get("seed"), doc.get("n_companies")
            return cls(base_urls=dict(doc["base_urls"]), api_keys=dict(doc["api_keys"]),
                       time_scale=float(doc["time_scale"]), epoch=datetime.fromisoformat(doc["epoch"]),
                       pid=int(doc["pid"]), world=world, rates=dict(rates) if rates is not None else None,
                       seed=None if seed is None else int(seed),
                       n_companies=None if n_companies is None else int(n_companies))
        except FileNotFoundError:
            raise ValueError(f"no sandbox connection file at {path}; start one with "
                             f"`deepsearch sandbox serve --connection-file {path}`") from None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is not a sandbox connection file: {type(exc).__name__}: {exc}") from exc


class AttachedSandbox:
    """A standalone sandbox running in another process, seen through its connection file.

    It has the attributes the client needs (``base_urls``, ``api_keys``, ``clock``) and nothing to
    start or stop. Jobs live in the serving process, so a run on it survives the client and can be
    resumed (unlike a run on an in-process :class:`Sandbox`).
    """

    in_process = False

    def __init__(self, connection: SandboxConnection) -> None:
        self.connection = connection
        self.base_urls = dict(connection.base_urls)
        self.api_keys = dict(connection.api_keys)
        self.clock: Clock = connection.clock()
        self.world_name: str = connection.world
        self.disagreements: DisagreementRates | None = connection.disagreements()

    @property
    def world(self) -> World:
        """The serving sandbox's world, rebuilt here from the file's seed, size and rates (ground
        truth for hits from it: :func:`providers.sandbox.truth.true_id_of`).

        Raises:
            RuntimeError: the file does not record the seed and size (a sandbox older than the field).
        """
        c = self.connection
        if c.seed is None or c.n_companies is None:
            raise RuntimeError("the connection file does not record the world's seed and size; "
                               "restart `deepsearch sandbox serve`")
        return build_world(seed=c.seed, n_companies=c.n_companies, disagreements=self.disagreements)

    async def __aenter__(self) -> AttachedSandbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class Sandbox:
    """Async context manager running the configured emulators on local ports.

    Args:
        config: what to run (defaults to :class:`SandboxConfig()`).
        clock: shared virtual clock; defaults to ``ScaledClock(config.time_scale)``. Pass the same
            clock to the client so Retry-After, windows and deadlines agree.

    Attributes (valid inside the ``async with``):
        base_urls: provider -> ``"http://127.0.0.1:<port>"``.
        api_keys: provider -> a valid key of org 1.
    """

    in_process = True

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or SandboxConfig()
        self.clock: Clock = clock or ScaledClock(self.config.time_scale)
        self.world_name: str = SandboxConnection.world_of(self.config.disagreements)[0]  # "default" / "hard"
        self.keys = KeyRegistry()
        self.faults = FaultInjector(self.config.seed, self.config.faults, clock=self.clock)  # windowed rules: its time
        self.base_urls: dict[str, str] = {}
        self.api_keys: dict[str, str] = {}
        self._world: World | None = None
        self._emulators: dict[str, EmulatorApp] = {}
        self._contexts: dict[str, SandboxContext] = {}
        self._runners: list[web.AppRunner] = []

    async def __aenter__(self) -> Sandbox:
        cfg = self.config
        unknown = [p for p in cfg.providers if p not in emulated()]
        if unknown:
            raise ValueError(f"no sandbox emulator for {unknown}; known: {sorted(emulated())}")
        self._world = build_world(seed=cfg.seed, n_companies=cfg.n_companies, disagreements=cfg.disagreements)
        try:
            for provider in cfg.providers:
                await self._start(provider)
        except BaseException:
            await self._stop()
            raise
        log.info("sandbox.started", base_urls=self.base_urls, time_scale=cfg.time_scale)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self, provider: str) -> None:
        cfg = self.config
        ctx = SandboxContext(
            provider=provider,
            clock=self.clock,
            world=self.world,
            stats=StatsRecorder(provider),
            faults=self.faults,
            keys=self.keys,
            rng=random.Random(f"{cfg.seed}:{provider}"),
        )
        if cfg.id_seed is not None:
            ctx.ids = seeded_ids(f"{cfg.id_seed}:{provider}")
            ctx.secret = f"sandbox-secret:{cfg.id_seed}:{provider}".encode()
        emulator = _load_factory(provider)(ctx, cfg.settings.get(provider, {}))
        runner = web.AppRunner(emulator.app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, cfg.host, cfg.ports.get(provider, 0))
        await site.start()
        host, port = runner.addresses[0][:2]
        self.base_urls[provider] = f"http://{host}:{port}"
        self.api_keys[provider] = self.keys.key_for(provider)
        self._emulators[provider] = emulator
        self._contexts[provider] = ctx

    async def _stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()

    @property
    def world(self) -> World:
        """The synthetic world (available once the sandbox has started)."""
        if self._world is None:
            raise RuntimeError("the sandbox has not been started (use `async with Sandbox(...)`)")
        return self._world

    def api_key(self, provider: str, org: int = 1) -> str:
        """A valid API key of ``org`` at ``provider`` (other orgs for cross-tenant tests)."""
        return self.keys.key_for(provider, org)

    def stats(self) -> dict[str, Any]:
        """``{"providers": {name: <GET /_sandbox/stats document>}}`` for every running provider."""
        return {"providers": {p: ctx.stats.snapshot() for p, ctx in self._contexts.items()}}

    def requests(self, provider: str, route: str | None = None) -> list[RecordedRequest]:
        """The requests ``provider``'s emulator received, oldest first (``route``: one route key only,
        e.g. ``"POST /search/start-deep-search"``). Credentials are never recorded."""
        return self._contexts[provider].stats.requests(route)

    def connection(self) -> SandboxConnection:
        """What a client in another process needs to attach (see :class:`SandboxConnection`).

        Raises:
            RuntimeError: the sandbox's clock is not a :class:`ScaledClock` (no shared epoch).
        """
        if not isinstance(self.clock, ScaledClock):
            raise RuntimeError("only a sandbox on a ScaledClock can be attached from another process")
        world, rates = SandboxConnection.world_of(self.config.disagreements)
        return SandboxConnection(base_urls=dict(self.base_urls), api_keys=dict(self.api_keys),
                                 time_scale=self.clock.scale, epoch=self.clock.epoch, pid=os.getpid(),
                                 world=world, rates=rates, seed=self.config.seed, n_companies=self.config.n_companies)

    def emulator(self, provider: str) -> Any:
        """The emulator state object of ``provider`` (test hooks live there)."""
        return self._emulators[provider]

    def add_fault(self, rule: FaultRule) -> None:
        """Activate a fault rule at run time."""
        self.faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.faults.clear()


async def serve(config: SandboxConfig, *, on_ready: Callable[[SandboxConnection], None],
                stop_on: Sequence[signal.Signals] = ()) -> signal.Signals | None:
    """Run the sandbox until cancelled or one of ``stop_on`` arrives; ``on_ready(connection)`` is
    called once it listens.

    ``stop_on`` (``deepsearch sandbox serve``: SIGINT, SIGTERM, SIGHUP) are handled on the loop
    from before the emulators start, so a signal at any point stops the sandbox by returning: the
    caller's cleanup runs (the default SIGTERM action would end the process on the spot). A signal
    that arrives while the sandbox starts stops it before ``on_ready``. Library callers usually pass
    none and cancel the task instead.

    Returns:
        The signal that stopped it.
    """
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    installed = []
    for sig in stop_on:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, not the main thread
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        async with Sandbox(config) as sandbox:
            if not stop.is_set():
                on_ready(sandbox.connection())
                await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return received[0] if received else None
