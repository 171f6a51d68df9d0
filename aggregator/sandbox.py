"""The sandbox as the core sees it: a typed interface, and the one place that opens one.

The core never imports the emulators: it depends on :class:`SandboxHandle` (where each emulator
listens, a key for each, the shared clock, whether it lives in this process) and asks
:func:`open_sandbox` for one, which imports :mod:`providers.sandbox` only then. Tests and
benchmarks may pass their own running :class:`providers.sandbox.runner.Sandbox` (it satisfies
the protocol) to :class:`~aggregator.core.Aggregator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

from aggregator.clock import Clock
from aggregator.config import SandboxSettings
from aggregator.errors import ConfigError

__all__ = ["SandboxHandle", "open_sandbox"]


@runtime_checkable
class SandboxHandle(Protocol):
    """A running sandbox.

    Attributes:
        base_urls: provider -> ``"http://127.0.0.1:<port>"`` of its emulator (only those running).
        api_keys: provider -> a valid sandbox key (synthetic, never a real provider's).
        clock: the sandbox's virtual clock; the client must use it too.
        in_process: True when the emulators live in this process (their jobs end with it, so a
            run on them cannot be resumed by another process); False for an attached standalone one.
        world_name: ``"default"`` (the consistent world) or ``"hard"`` (the providers disagree); an
            attached sandbox reads it from its connection file (``[sandbox] world`` does not apply to it).
    """

    base_urls: dict[str, str]
    api_keys: dict[str, str]
    clock: Clock
    in_process: bool
    world_name: str

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Stop the emulators (an attached sandbox has nothing to stop)."""
        ...


async def open_sandbox(settings: SandboxSettings, providers: Sequence[str]) -> SandboxHandle:
    """Attach to ``settings.connection_file``'s standalone sandbox, or start an in-process one
    running the emulators of ``providers`` that have one. Close it with ``await handle.__aexit__()``.
    An attached sandbox's world (``world_name``) is the one its connection file records.

    Raises:
        ConfigError: the connection file is missing or malformed, or the sandbox it describes is not
            running any more (its process exited, or its ports refuse connections: a ``kill -9``
            leaves the file behind) (``sandbox.connection_file``); ``world = "hard"`` asked of an
            attached sandbox serving the default world (``sandbox.world``).
    """
    from providers.sandbox.runner import AttachedSandbox, Sandbox, SandboxConfig, SandboxConnection, emulated

    if settings.connection_file is not None:
        path = settings.connection_file
        try:
            connection = SandboxConnection.read(path)
        except ValueError as exc:
            raise ConfigError("sandbox.connection_file", str(exc)) from exc
        gone = await connection.gone()
        if gone is not None:
            raise ConfigError("sandbox.connection_file",
                              f"the sandbox of {path} is not running ({gone}); start one with "
                              f"`deepsearch sandbox serve --connection-file {path}`, or unset DEEPSEARCH_SANDBOX "
                              "to use an in-process sandbox")
        if settings.world == "hard" and connection.world != "hard":
            raise ConfigError("sandbox.world",
                              f"the sandbox of {path} serves the {connection.world} world, not the hard one; "
                              f"start it with `deepsearch sandbox serve --world hard --connection-file {path}`, "
                              "or drop world = \"hard\" (an attached sandbox's world is its own)")
        return AttachedSandbox(connection)
    from providers.sandbox.disagreements import DisagreementRates

    sandbox = Sandbox(SandboxConfig(time_scale=settings.time_scale, seed=settings.seed,
                                    n_companies=settings.n_companies,
                                    providers=tuple(n for n in providers if n in emulated()),
                                    disagreements=DisagreementRates.hard() if settings.world == "hard" else None))
    return await sandbox.__aenter__()
