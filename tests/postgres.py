"""A throwaway PostgreSQL cluster for tests: a real server, never a mock and never a shared one.

:func:`start_cluster` runs ``initdb`` into a fresh temporary directory and ``pg_ctl start`` on a free
loopback port (Unix socket in the same directory), and returns a :class:`Cluster`; ``stop()``
stops it and removes the directory. ``initdb`` refuses to run as root, so as root the cluster runs
as the ``postgres`` system user (or ``nobody``) through ``runuser``/``setpriv``.

The session fixture ``postgres`` in ``tests/conftest.py`` starts one cluster per pytest worker;
tests take a fresh database each (``postgres.new_database()``), so they never see each other's rows.
Set ``DEEPSEARCH_TEST_POSTGRES_BIN`` to the directory of ``initdb``/``pg_ctl`` when they are not on PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["Cluster", "PostgresUnavailable", "postgres", "postgres_url", "start_cluster"]

SUPERUSER = "deepsearch"
PASSWORD = "s3cret-pg-pass"  # tests check that it never appears in logs, errors or reports


class PostgresUnavailable(RuntimeError):
    """initdb/pg_ctl are missing or the cluster would not start (the message says which and why)."""


def _binary(name: str) -> str:
    where = os.environ.get("DEEPSEARCH_TEST_POSTGRES_BIN")
    found = shutil.which(name, path=where) if where else shutil.which(name)
    if found is None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        raise PostgresUnavailable(f"{name} not found on PATH (install PostgreSQL 15, or set "
                                  "DEEPSEARCH_TEST_POSTGRES_BIN)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix that drops root (initdb refuses it), and that user's uid/gid."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            if shutil.which("runuser"):
                return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
            return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"], \
                user.pw_uid, user.pw_gid
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' user to run initdb as")


@dataclass
class Cluster:
    """A running throwaway cluster. ``url`` is the superuser's URL of the ``postgres`` database."""

    directory: Path
    port: int
    prefix: list[str]
    databases: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://{SUPERUSER}:{password}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` through ``psql`` (setup only; tests use the library's driver)."""
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        done = subprocess.run([_binary("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                               "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self.prefix, _binary("pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb + pg_ctl start on a free port in a new temp dir. Raises PostgresUnavailable."""
    prefix, uid, gid = _as_user()
    directory = Path(tempfile.mkdtemp(prefix="deepsearch-pg-"))
    os.chmod(directory, 0o700)
    if uid is not None and gid is not None:
        os.chown(directory, uid, gid)
    pwfile = directory / "pw"
    pwfile.write_text(PASSWORD)
    if uid is not None and gid is not None:
        os.chown(pwfile, uid, gid)
    data = directory / "data"
    init = subprocess.run([*prefix, _binary("initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                           "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"], capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    port = _free_port()
    options = (f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    start = subprocess.run([*prefix, _binary("pg_ctl"), "-D", str(data), "-o", options, "-l",
                            str(directory / "log"), "-w", "-t", "60", "start"], capture_output=True, text=True)
    if start.returncode != 0:
        log = (directory / "log").read_text(errors="replace") if (directory / "log").exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {log[-2000:]}")
    return Cluster(directory=directory, port=port, prefix=prefix)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throwaway cluster per pytest worker (see the module docstring); ``new_database()`` per test."""
    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        pytest.fail(f"tests that need PostgreSQL cannot start one: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres: Cluster) -> str:
    """The URL of a fresh, empty database on the session's cluster."""
    return postgres.new_database()
