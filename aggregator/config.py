"""Settings: registered providers' own defaults < ``config/default.toml`` < user file < environment < CLI flags.

Shapes:
    :class:`Settings` holds ``run``, ``http``, ``retry``, ``sandbox``, ``database`` (the optional
    PostgreSQL backend, :class:`DatabaseSettings`) and one :class:`ProviderSettings` per provider.
    Provider-specific knobs the core does not know (``page_size``, ``fetch_via``...) are kept as extra
    fields and read by the adapter.

API keys are read only from the environment variable each provider names (``api_key_env``) and are
held as :class:`pydantic.SecretStr`, so they never appear in reprs, logs or reports. A provider run
live must have an ``https://`` base URL (loopback hosts excepted) unless
``http.allow_insecure_base_urls`` is set; :func:`aggregator.targets.resolve_targets` enforces it.

Errors: every invalid file, value or variable raises :class:`~aggregator.errors.ConfigError`
naming the setting (e.g. ``providers.sixtyfour.page_size``). Every key is checked, whichever layer
it comes from: an unknown section, key, provider table, provider key (a provider accepts the common
keys of :class:`ProviderSettings` and the adapter-specific ones its
:attr:`~providers.spec.ProviderSpec.settings` declares), ``rate_limits`` row key or ``[policies]``
key is refused with the closest known name (``providers.sixtyfour.poll_intervall_s: unknown field;
did you mean 'poll_interval_s'?``).
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator

from aggregator.contract import RateLimitRow, specs_from_settings
from aggregator.errors import ConfigError
from aggregator.models import Criterion

if TYPE_CHECKING:
    from providers.spec import ProviderSpec

__all__ = [
    "DATABASE_URL_ENV",
    "AccountBudgetSettings",
    "BreakerOverride",
    "BreakerSettings",
    "CacheSettings",
    "DatabaseSettings",
    "HttpSettings",
    "McpSettings",
    "ProviderSettings",
    "RetrySettings",
    "RunSettings",
    "SandboxSettings",
    "Settings",
    "default_config_path",
    "load_criteria",
    "load_database_settings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSettings(_Section):
    max_results: int = Field(100, ge=1, le=5000)
    deadline_s: float = Field(900.0, gt=0)


class HttpSettings(_Section):
    """HTTP client settings. ``allow_insecure_base_urls``: let live providers use ``http://`` base
    URLs off this machine (loopback hosts are always allowed; see :mod:`aggregator.targets`)."""

    timeout_s: float = Field(60.0, gt=0, description="Real seconds per request.")
    connect_timeout_s: float = Field(10.0, gt=0)
    allow_insecure_base_urls: bool = Field(
        False, description="Send API keys over plain http:// to hosts other than loopback (live mode).")


class RetrySettings(_Section):
    max_attempts: int = Field(6, ge=1, le=50)
    max_elapsed_s: float = Field(600.0, gt=0)
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    max_retry_after_s: float = Field(120.0, ge=0)


class SandboxSettings(_Section):
    """The in-process sandbox, or ``connection_file``: a standalone one to attach to.

    ``connection_file`` is the file ``deepsearch sandbox serve --connection-file PATH`` writes
    (environment: ``DEEPSEARCH_SANDBOX``). Runs on an attached sandbox outlive the client process,
    so they can be resumed; ``time_scale`` and ``seed`` then come from the file.

    ``world``: ``"default"``, the consistent world, or ``"hard"``, where the providers disagree the way
    real ones do (job changes, nicknames, renames, namesakes...: the rates of
    :meth:`providers.sandbox.disagreements.DisagreementRates.hard`).
    """

    time_scale: float = Field(0.02, gt=0, le=1)
    seed: int = 7
    n_companies: int = Field(4000, ge=50, le=100_000)
    world: Literal["default", "hard"] = "default"
    connection_file: Path | None = None


DATABASE_URL_ENV = "DEEPSEARCH_DATABASE_URL"
"""The environment variable of :attr:`DatabaseSettings.url`; it wins over ``[database] url``."""


class DatabaseSettings(_Section):
    """The optional PostgreSQL backend (:mod:`aggregator.db`): without ``url`` the journal is the
    embedded SQLite file and coordination stays in the process, as always.

    ``url`` is a ``postgresql://user:password@host:port/database`` URL (environment:
    ``DEEPSEARCH_DATABASE_URL``), held as a :class:`~pydantic.SecretStr` like the API keys, since it
    may carry a password; :func:`aggregator.db.redact` shows it with the password as ``***``.
    ``pool_size`` is the most connections one process opens; ``connect_timeout_s`` is how many
    real seconds to wait for the server (connecting, or for a free pooled connection).
    ``lease_ttl_s`` is how many real seconds a dead process's leases (job slots, concurrency caps),
    in-flight requests and budget holds outlive its last heartbeat (sent every third of it): a
    killed worker's slots come back after at most this long.
    """

    url: SecretStr | None = Field(None, description="postgresql://user:password@host:port/database")
    pool_size: int = Field(10, ge=1, le=1000)
    connect_timeout_s: float = Field(10.0, gt=0, le=600)
    lease_ttl_s: float = Field(30.0, ge=1, le=3600)

    @field_validator("url", mode="before")
    @classmethod
    def _postgres_url(cls, value: Any) -> Any:
        """Blank means unset; anything else must be a ``postgresql://`` (or ``postgres://``) URL.
        The message never repeats the value (it may hold a password)."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            text = text.strip()
            if not text:
                return None
            if not text.startswith(("postgresql://", "postgres://")):
                raise ValueError("expected a postgresql://user:password@host:port/database URL")
            return text
        return value


class AccountBudgetSettings(_Section):
    """One provider account's credit budget (``[budgets.<provider>] credits = N, period = "day"``):
    every process using the account (one API key) together spends at most ``credits`` per ``period``
    (UTC days, ISO weeks, calendar months, or ``total``). Shared across processes when
    ``[database] url`` is set (:mod:`aggregator.coordination`), else within the process."""

    credits: float = Field(gt=0, description="Credits per period, for every process using the account.")
    period: Literal["day", "week", "month", "total"] = "day"


class McpSettings(_Section):
    """Money safety of ``deepsearch mcp`` (the MCP server for agents), in credits.

    ``max_credits_per_call``: the most one paid tool call (``deep_search``, ``start_deep_search``,
    ``resume_search``, ``compare_providers``, ``lookup_person``, ``filter_search``) may spend; a call that
    asks for more is refused before anything is sent, and a call that names no budget gets this one.
    ``max_credits_per_session``: the most one server process (one stdio session) spends in all; a call's
    budget is reserved from it when the call starts, so concurrent calls cannot overshoot together.
    """

    max_credits_per_call: float = Field(50.0, gt=0, allow_inf_nan=False)
    max_credits_per_session: float = Field(200.0, gt=0, allow_inf_nan=False)


class CacheSettings(_Section):
    """The result cache (:mod:`aggregator.cache`): an identical request asked again within the TTL is
    answered from the journal (the earlier run's records, outcomes and provenance; 0 credits).

    ``ttl_s``: the library's TTL in real seconds; None (the default) leaves the cache off for
    :class:`~aggregator.Aggregator` calls that do not pass ``cache_ttl_s``. ``cli_ttl_s``: the TTL of
    ``deepsearch search`` / ``filter`` / ``lookup`` and the MCP server's ``deep_search`` (``--cache-ttl``
    overrides it, ``--no-cache`` turns it off); None turns the CLI's cache off too.
    """

    ttl_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    cli_ttl_s: float | None = Field(3600.0, gt=0, allow_inf_nan=False)


class BreakerOverride(_Section):
    """``[breaker.providers.<provider>]``: one provider's own circuit-breaker settings (unset keys: ``[breaker]``'s)."""

    enabled: bool | None = None
    failures: int | None = Field(None, ge=1, le=10_000)
    failure_rate: float | None = Field(None, gt=0, le=1)
    window_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    min_calls: int | None = Field(None, ge=1, le=1_000_000)
    cooldown_s: float | None = Field(None, gt=0, allow_inf_nan=False)


class BreakerSettings(_Section):
    """Circuit breakers per provider account (:mod:`aggregator.breaker`).

    A provider account's circuit opens after ``failures`` consecutive failed calls (connection errors,
    5xx, timeouts; never 4xx, 429 or malformed bodies), or when at least ``min_calls`` calls of the last
    ``window_s`` seconds failed at a rate of ``failure_rate`` or more. While open (``cooldown_s``, or the
    failure's ``Retry-After`` when longer) its calls and new provider steps are refused at once; then
    one probe call is let through (half-open): its success closes the circuit, its failure reopens it.
    Durations are seconds of the run's clock (virtual on the sandbox). ``providers`` holds per-provider
    overrides (``[breaker.providers.orbit] cooldown_s = 60``).
    """

    enabled: bool = True
    failures: int = Field(8, ge=1, le=10_000)
    failure_rate: float = Field(0.5, gt=0, le=1)
    window_s: float = Field(60.0, gt=0, allow_inf_nan=False)
    min_calls: int = Field(20, ge=1, le=1_000_000)
    cooldown_s: float = Field(30.0, gt=0, allow_inf_nan=False)
    providers: dict[str, BreakerOverride] = Field(
        default_factory=dict, description="Per-provider overrides ([breaker.providers.NAME] tables).")

    def for_provider(self, name: str) -> BreakerSettings:
        """The settings that apply to ``name``: ``[breaker]`` with its override's keys over them."""
        override = self.providers.get(name)
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


class ProviderSettings(BaseModel):
    """One provider's settings. Unknown keys are kept for the adapter (``extra``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    base_url: str
    api_key_env: str
    base_url_env: str
    api_key: SecretStr | None = None
    enabled: bool = True
    poll_interval_s: float = Field(10.0, gt=0)
    poll_max_interval_s: float = Field(15.0, gt=0)
    max_concurrent_jobs: int | None = Field(None, ge=1)
    rate_limits: tuple[dict[str, Any], ...] = ()

    def option(self, name: str, default: Any) -> Any:
        """An adapter-specific setting (an extra key), or ``default``."""
        extra = self.model_extra or {}
        return extra.get(name, default)


class Settings(_Section):
    """All settings of one Aggregator; ``target`` is ``auto``, ``sandbox`` or ``live``."""

    run: RunSettings = RunSettings()
    http: HttpSettings = HttpSettings()
    retry: RetrySettings = RetrySettings()
    sandbox: SandboxSettings = SandboxSettings()
    database: DatabaseSettings = DatabaseSettings()
    mcp: McpSettings = McpSettings()
    breaker: BreakerSettings = BreakerSettings()
    cache: CacheSettings = CacheSettings()
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    budgets: dict[str, AccountBudgetSettings] = Field(
        default_factory=dict, description="Account-wide credit budgets per provider ([budgets.NAME] tables).")
    policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named strategy policies ([policies.NAME] tables), see pipelines.")
    target: Literal["auto", "sandbox", "live"] = "auto"

    def with_target(self, target: Literal["auto", "sandbox", "live"]) -> Settings:
        return self.model_copy(update={"target": target})


def default_config_path() -> Path:
    """The built-in defaults shipped inside the package (``aggregator/default.toml``).

    ``config/default.toml`` in a checkout is a link to this file: one source of truth, read
    through :mod:`importlib.resources` so it works from a wheel, an editable install or a zip.

    Raises:
        ConfigError: the package was installed without its data file (a broken build).
    """
    resource = resources.files("aggregator").joinpath("default.toml")
    if not resource.is_file():
        raise ConfigError("config", "default.toml is missing from the installed package; reinstall it")
    return Path(str(resource))


def _registry() -> Mapping[str, ProviderSpec]:
    from providers import REGISTRY  # the registry is the one wiring point into providers

    return REGISTRY


def _registered_defaults() -> dict[str, Any]:
    """``{"providers": {name: section}}`` of every registered provider that brings its own defaults
    (:attr:`providers.spec.ProviderSpec.defaults`; the packaged ``default.toml`` layers over them)."""
    return {"providers": {name: dict(spec.defaults) for name, spec in _registry().items() if spec.defaults}}


def _packaged_defaults() -> dict[str, Any]:
    """The packaged ``default.toml``, without the sections of built-in providers that were unregistered."""
    packaged = _read_toml(default_config_path(), "config")
    registry = _registry()
    tables = packaged.get("providers")
    if isinstance(tables, dict):
        packaged["providers"] = {name: table for name, table in tables.items() if name in registry}
    return packaged


# -- every key is a known one ----------------------------------------------------------------------
def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``Policy`` in ``tuple[str | Policy, ...]``); a mapping's
    keys are data (provider or policy names), so a ``dict[...]`` holds none."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (dict, Mapping):
        return []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, list, typing.Annotated):
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    return []


def _check_table(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    known = set(known)
    for key in table:
        if key not in known:
            raise ConfigError.unknown(where, str(key), "field", known)


def _check_model_keys(data: Mapping[str, Any], model: type[BaseModel], where: str) -> None:
    """Every key of ``data`` (recursively into nested models' tables and rows) is a field of ``model``."""
    fields = model.model_fields
    _check_table(data, fields, where)
    for key, value in data.items():
        models = _models_in(fields[key].annotation)
        if not models:
            continue
        here = f"{where}.{key}" if where else key
        if isinstance(value, Mapping):
            _check_model_keys(value, models[0], here)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _check_model_keys(item, models[0], f"{here}[{index}]")


def _check_keys(data: Mapping[str, Any]) -> None:
    """Refuse any key of merged settings data (the layers of :func:`load_settings`) that no setting
    has: a section or key of :class:`Settings`, a provider that is not registered, a key of a provider
    table that is neither common (:class:`ProviderSettings`) nor declared by its provider
    (:attr:`~providers.spec.ProviderSpec.settings`), a key of a ``rate_limits`` row, of a
    ``[policies.NAME]`` table or of a ``[budgets.PROVIDER]`` table (whose provider must be registered).
    Values are not checked here (they are validated after).

    Raises:
        ConfigError: naming the key and the closest known name, e.g. ``providers.sixtyfor: unknown
            provider; did you mean 'sixtyfour'? (known: extruct, orbit, sixtyfour)``.
    """
    _check_model_keys(data, Settings, "")
    registry = _registry()
    providers = data.get("providers")
    for name, table in (providers.items() if isinstance(providers, Mapping) else ()):
        spec = registry.get(name)
        if spec is None:
            raise ConfigError.unknown("providers", str(name), "provider", registry)
        if not isinstance(table, Mapping):
            continue  # validation names the wrong type
        where = f"providers.{name}"
        _check_table(table, {*ProviderSettings.model_fields, *spec.settings}, where)
        rows = table.get("rate_limits")
        for index, row in enumerate(rows if isinstance(rows, list | tuple) else ()):
            if isinstance(row, Mapping):
                _check_model_keys(row, RateLimitRow, f"{where}.rate_limits[{index}]")
    breaker = data.get("breaker")
    overrides = breaker.get("providers") if isinstance(breaker, Mapping) else None
    for name, table in (overrides.items() if isinstance(overrides, Mapping) else ()):
        if name not in registry:
            raise ConfigError.unknown("breaker.providers", str(name), "provider", registry)
        if isinstance(table, Mapping):
            _check_model_keys(table, BreakerOverride, f"breaker.providers.{name}")
    budgets = data.get("budgets")
    for name, table in (budgets.items() if isinstance(budgets, Mapping) else ()):
        if name not in registry:
            raise ConfigError.unknown("budgets", str(name), "provider", registry)
        if isinstance(table, Mapping):
            _check_model_keys(table, AccountBudgetSettings, f"budgets.{name}")
    policies = data.get("policies")
    if isinstance(policies, Mapping) and any(isinstance(t, Mapping) for t in policies.values()):
        from aggregator.pipelines import Policy  # only when the settings hold policies

        for name, table in policies.items():
            if isinstance(table, Mapping):
                _check_model_keys(table, Policy, f"policies.{name}")


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(what, f"file not found: {path}") from None
    except OSError as exc:  # a directory, no permission
        raise ConfigError(what, f"cannot read {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(what, f"{path} is not valid TOML: {exc}") from exc


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    providers = {name: dict(values) for name, values in data.get("providers", {}).items()}
    for name, values in providers.items():
        key = env.get(str(values.get("api_key_env", "")), "").strip()
        if key:
            values["api_key"] = key
        base_url = env.get(str(values.get("base_url_env", "")), "").strip()
        if base_url:
            values["base_url"] = base_url.rstrip("/")
        providers[name] = values
    return {**data, "providers": providers}


def _apply_database_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``DEEPSEARCH_DATABASE_URL`` (when not blank) over ``[database] url``."""
    url = env.get(DATABASE_URL_ENV, "").strip()
    return _deep_merge(data, {"database": {"url": url}}) if url else data


def load_database_settings(config_file: str | Path | None = None, *,
                           env: Mapping[str, str] | None = None) -> DatabaseSettings:
    """Only the ``[database]`` settings, as :func:`load_settings` would give them (the user file's
    ``[database]`` table, then ``DEEPSEARCH_DATABASE_URL``), without loading the providers: for
    commands that only read the journal (``deepsearch runs``, ``show``, ``db``).

    Args:
        config_file: a user TOML file; default ``$DEEPSEARCH_CONFIG`` if set.
        env: the environment; default ``os.environ``.

    Raises:
        ConfigError: unreadable file, an unknown ``[database]`` key (with the closest known one) or
            an invalid value (named, e.g. ``database.url``; the URL itself is never repeated).
    """
    env = os.environ if env is None else env
    user_file = config_file or env.get("DEEPSEARCH_CONFIG")
    data: dict[str, Any] = {}
    if user_file:
        table = _read_toml(Path(user_file), "--config").get("database")
        if table is not None and not isinstance(table, Mapping):
            raise ConfigError("database", "expected a [database] table")
        data = {"database": dict(table or {})}
    data = _apply_database_env(data, env)
    section = data.get("database", {})
    _check_model_keys(section, DatabaseSettings, "database")
    try:
        return DatabaseSettings.model_validate(section)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, prefix="database") from exc


def load_criteria(path: str | Path) -> tuple[Criterion, ...]:
    """Criteria from a JSON file (a list, or ``{"criteria": [...]}``) or a TOML file
    (``[[criteria]]`` tables), each ``{key, name, criterion}``.

    Raises:
        ConfigError: unreadable file, unknown format, or an invalid criterion, named as
            ``--criteria[2].criterion: ...``.
    """
    file = Path(path)
    if file.suffix.lower() == ".toml":
        data: Any = _read_toml(file, "--criteria").get("criteria")
    elif file.suffix.lower() == ".json":
        try:
            data = orjson.loads(file.read_bytes())
        except FileNotFoundError:
            raise ConfigError("--criteria", f"file not found: {file}") from None
        except OSError as exc:  # a directory, no permission
            raise ConfigError("--criteria", f"cannot read {file}: {exc.strerror or exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise ConfigError("--criteria", f"{file} is not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("criteria")
    else:
        raise ConfigError("--criteria", f"use a .json or .toml file, got {file.name!r}")
    if not isinstance(data, list) or not data:
        raise ConfigError("--criteria", "expected a non-empty list of {key, name, criterion}")
    try:
        return tuple(TypeAdapter(list[Criterion]).validate_python(data))
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, prefix="--criteria") from exc


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from every layer.

    Args:
        config_file: a user TOML file; default ``$DEEPSEARCH_CONFIG`` if set.
        env: the environment to read keys, base URLs and ``DEEPSEARCH_SANDBOX`` from; default
            ``os.environ``.
        overrides: a nested mapping applied last (the CLI's flags).

    Raises:
        ConfigError: unreadable file, invalid TOML, an unknown key (with the closest known one, see
            :func:`_check_keys`), or a value out of range (names the setting, e.g.
            ``providers.orbit.rate_limits[0].limit``).
    """
    env = os.environ if env is None else env
    data = _deep_merge(_registered_defaults(), _packaged_defaults())
    user_file = config_file or env.get("DEEPSEARCH_CONFIG")
    if user_file:
        data = _deep_merge(data, _read_toml(Path(user_file), "--config"))
    data = _apply_env(data, env)
    data = _apply_database_env(data, env)
    if env.get("DEEPSEARCH_SANDBOX", "").strip():
        data = _deep_merge(data, {"sandbox": {"connection_file": env["DEEPSEARCH_SANDBOX"].strip()}})
    if overrides:
        data = _deep_merge(data, overrides)
    _check_keys(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, default="config") from exc
    for name, provider in settings.providers.items():  # rate-limit rows are typed where read: check them now
        specs_from_settings(provider.rate_limits, f"providers.{name}.rate_limits")
    return settings
