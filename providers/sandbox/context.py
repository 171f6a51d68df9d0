"""What an emulator receives from the sandbox: :class:`SandboxContext` (design §4).

The context bundles the shared, injectable pieces so that emulators stay pure HTTP contracts
over a world: the clock (virtual seconds; the only source of time), the synthetic world, the
emulator's own :class:`StatsRecorder`, the sandbox-wide :class:`FaultInjector`, the API-key
registry (key -> org id), a seeded RNG for deterministic draws, and the source of ids and the
signing secret, which are unique per sandbox instance (as at a real service, an id saved from one
sandbox is unknown to the next); tests that need repeatable ids inject :func:`seeded_ids`.

Emulators live in ``providers/<name>/emulator/`` (a subpackage) and expose
``create_emulator(ctx, settings) -> EmulatorApp`` (named by the provider spec's ``emulator``).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aggregator.clock import Clock
from providers.sandbox.faults import FaultInjector
from providers.sandbox.stats import StatsRecorder
from providers.sandbox.world import World

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["EmulatorApp", "KeyRegistry", "SandboxContext", "random_ids", "seeded_ids"]


class EmulatorApp(Protocol):
    """What ``create_emulator`` returns: the aiohttp application plus its state."""

    @property
    def app(self) -> web.Application: ...


class KeyRegistry:
    """Valid API keys per provider and the org each belongs to.

    Keys follow ``sandbox-<provider>-key-<org>`` for any org ``>= 1`` (so cross-org tests can
    mint a second tenant's key); extra keys can be registered explicitly.
    """

    def __init__(self) -> None:
        self._extra: dict[tuple[str, str], int] = {}

    @staticmethod
    def key_for(provider: str, org: int = 1) -> str:
        """The canonical key of ``org`` at ``provider``."""
        if org < 1:
            raise ValueError(f"org ids start at 1, got {org}")
        return f"sandbox-{provider}-key-{org}"

    def register(self, provider: str, key: str, org: int) -> None:
        """Accept ``key`` at ``provider`` as a key of ``org``."""
        self._extra[(provider, key)] = org

    def org_for(self, provider: str, key: str | None) -> int | None:
        """The org owning ``key`` at ``provider``, or None if the key is missing/unknown."""
        if not key:
            return None
        if (provider, key) in self._extra:
            return self._extra[(provider, key)]
        prefix = f"sandbox-{provider}-key-"
        suffix = key.removeprefix(prefix)
        if suffix != key and suffix.isdigit() and not suffix.startswith("0"):
            return int(suffix)
        return None


def random_ids() -> str:
    """A fresh random version-4 UUID string (the default id source: never repeats across sandboxes)."""
    return str(uuid.uuid4())


def seeded_ids(seed: str) -> Callable[[], str]:
    """A repeatable id source for tests: the same ``seed`` gives the same sequence of v4 UUIDs."""
    rng = random.Random(seed)

    def draw() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    return draw


@dataclass
class SandboxContext:
    """Shared machinery handed to one provider's emulator.

    Attributes:
        provider: the provider name (``"sixtyfour"``).
        clock: virtual-time clock; every duration is in its (virtual) seconds.
        world: the synthetic world (``providers.sandbox.world.World``).
        stats: this provider's statistics recorder.
        faults: the sandbox-wide fault injector.
        keys: API-key registry.
        rng: seeded RNG for this provider's draws (never for ids: they must not repeat).
        ids: source of job, run, task, search and cursor ids (:func:`random_ids` by default).
        secret: signing secret for signed URLs, random per instance by default.
    """

    provider: str
    clock: Clock
    world: World
    stats: StatsRecorder
    faults: FaultInjector
    keys: KeyRegistry
    rng: random.Random
    ids: Callable[[], str] = field(default=random_ids, repr=False)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def new_uuid(self) -> str:
        """A new id (a version-4 UUID string) from :attr:`ids`."""
        return self.ids()

    def sign(self, message: str) -> str:
        """Hex HMAC-SHA256 of ``message`` under the sandbox secret (for signed URLs)."""
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str) -> bool:
        """Constant-time check of a :meth:`sign` signature."""
        return hmac.compare_digest(self.sign(message), signature)
