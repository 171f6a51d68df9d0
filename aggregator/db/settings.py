"""Which database, and how to name it without its password.

The URL comes from ``DEEPSEARCH_DATABASE_URL``, else ``[database] url`` in the config
(:class:`~aggregator.config.DatabaseSettings`, loaded by :func:`~aggregator.config.load_settings` or,
for commands that only read the journal, :func:`~aggregator.config.load_database_settings`). Without
it, nothing uses PostgreSQL.

A URL or a driver message is shown only through :func:`redact` / :func:`scrub` (the password becomes
``***``) or as :func:`address` (``host:port/database``): passwords never reach logs, errors or reports.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode

from aggregator.config import DATABASE_URL_ENV, DatabaseSettings, load_database_settings

__all__ = ["DATABASE_URL_ENV", "DatabaseSettings", "address", "database_url", "load_database_settings", "redact",
           "scrub"]

MASK = "***"
DEFAULT_PORT = 5432


def database_url(database: DatabaseSettings) -> str | None:
    """The configured URL with its password (for the driver only), or None: the embedded SQLite backend."""
    return database.url.get_secret_value() if database.url is not None else None


def _split(url: str) -> tuple[str, str, str, str, str]:
    """(scheme://, userinfo, hosts, path, query) of a URL; multi-host netlocs (``h1:5432,h2``) are kept whole."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", "", url, ""
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    return scheme + sep, userinfo if at else "", hosts, slash + path, query


def _passwords(url: str) -> list[str]:
    """The password of ``url`` as written and decoded (in the userinfo and in a ``password=`` parameter)."""
    _, userinfo, _, _, query = _split(url)
    found = []
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    found += [value for key, value in parse_qsl(query, keep_blank_values=True) if key == "password"]
    found += [unquote(secret) for secret in found]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def redact(url: str) -> str:
    """``url`` with its password (in the userinfo or a ``password=`` parameter) replaced by ``***``, e.g.
    ``postgresql://app:***@db.internal:5432/deepsearch``. A URL without a password is returned as is."""
    scheme, userinfo, hosts, path, query = _split(url)
    if not scheme:
        return url
    if ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:{MASK}"
    netloc = f"{userinfo}@{hosts}" if userinfo else hosts
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            query = urlencode([(key, MASK if key == "password" else value) for key, value in pairs], safe="*/")
    return f"{scheme}{netloc}{path}" + (f"?{query}" if query else "")


def scrub(text: str, url: str | None) -> str:
    """``text`` (a driver's message, a traceback) with ``url`` and its password replaced by their redacted forms."""
    if not url:
        return text
    text = text.replace(url, redact(url))
    for secret in _passwords(url):
        text = text.replace(secret, MASK)
    return text


def address(url: str) -> str:
    """The server and database of ``url`` for messages: ``host:port/database`` (port 5432 when not given;
    the host and database of ``host=`` / ``dbname=`` parameters when set), never the user or password."""
    _, _, hosts, path, query = _split(url)
    params = dict(parse_qsl(query, keep_blank_values=True))
    hosts = unquote(params.get("host", hosts)) or "localhost"
    database = unquote(params.get("dbname", path.lstrip("/"))) or "(default database)"
    port = params.get("port")
    shown = []
    for host in hosts.split(","):
        if host.startswith("/"):  # a Unix socket directory
            shown.append(f"{host} (Unix socket)")
            continue
        name, colon, own_port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not colon or not own_port.isdigit():
            name, own_port = host, ""
        shown.append(f"{name}:{own_port or port or DEFAULT_PORT}")
    return f"{','.join(shown)}/{database}"
