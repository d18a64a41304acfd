"""A throwaway PostgreSQL 15 server for the catalog tests, and the catalog-parametrized settings fixture.

The server runs from the PostgreSQL binaries of the machine (``initdb`` + ``pg_ctl``)
in a temporary directory, on a free port of 127.0.0.1, trusting local connections,
once per test session; every test gets a fresh database in it. PostgreSQL refuses
to run as root, so under root the server runs as the ``postgres`` system user
(``runuser``). The tests are skipped ONLY when the binaries are absent, and
``.ci/run`` installs them and sets GOVFACTS_REQUIRE_POSTGRES=1 (absent binaries then
fail the tests instead), so CI never skips.

Registered as a pytest plugin from tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from transforms.settings import Settings, load_settings

PG_VERSION = "15"
PG_BIN_CANDIDATES = (Path(f"/usr/lib/postgresql/{PG_VERSION}/bin"), Path(f"/usr/pgsql-{PG_VERSION}/bin"))
CATALOGS = ("sqlite", "postgres")


def find_pg_bin() -> Path | None:
    """Directory holding initdb and pg_ctl of PostgreSQL 15, or None."""
    for d in PG_BIN_CANDIDATES:
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    initdb = shutil.which("initdb")
    if initdb:
        out = subprocess.run([initdb, "--version"], capture_output=True, text=True).stdout
        if f" {PG_VERSION}." in out:
            return Path(initdb).parent
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: where it is and how to make a database in it."""

    bin: Path
    root: Path
    port: int
    run_as: list[str]
    _names = itertools.count(1)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, dbname: str) -> str:
        return f"dbname={dbname} host=127.0.0.1 port={self.port} user=postgres"

    def create_database(self) -> str:
        """A fresh, empty database; returns its libpq DSN."""
        name = f"govfacts_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        res = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", "postgres", "-d", dbname, "-c", sql],
                             capture_output=True, text=True, timeout=60)
        if res.returncode:
            raise RuntimeError(f"psql failed on {sql!r}: {res.stderr.strip()}")
        return res.stdout

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
                              capture_output=True, text=True, timeout=120)


def _run_as() -> list[str]:
    """Prefix that runs a PostgreSQL binary as a non-root user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no 'postgres' user to run the test server as; "
                    "install postgresql-15 (it creates the user) or run the tests as a normal user")
    return ["runuser", "-u", "postgres", "--"]


def start_server() -> PostgresServer:
    """initdb + pg_ctl start in a fresh temp dir on a free port (fsync off: throwaway data)."""
    pg_bin = find_pg_bin()
    if pg_bin is None and os.environ.get("GOVFACTS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL {PG_VERSION} binaries not found and GOVFACTS_REQUIRE_POSTGRES=1 (CI): "
                    f"apt-get install -y postgresql-{PG_VERSION}")
    if pg_bin is None:
        pytest.skip(f"PostgreSQL {PG_VERSION} binaries not found (looked in {', '.join(map(str, PG_BIN_CANDIDATES))} and PATH); "
                    f"install them: apt-get install -y postgresql-{PG_VERSION} (.ci/run does this)")
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="govfacts-pg-"))
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(bin=pg_bin, root=root, port=free_port(), run_as=run_as)
    init = subprocess.run([*run_as, str(pg_bin / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--no-locale", "--no-sync"], capture_output=True, text=True, timeout=120)
    if init.returncode:
        raise RuntimeError(f"initdb failed in {server.data}: {init.stderr.strip()}")
    started = server.pg_ctl("-l", str(root / "server.log"), "-w", "-t", "60", "-o",
                            f"-p {server.port} -h 127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
                            f"-c full_page_writes=off -c max_connections=200", "start")
    if started.returncode:
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()}\n{log[-2000:]}")
    return server


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL 15 server for the whole test session."""
    server = start_server()
    try:
        yield server
    finally:
        server.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module", params=CATALOGS)
def module_catalog_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Like ``catalog_settings`` but shared by the tests of a module that only read (cheaper)."""
    return settings_for(request.param, tmp_path_factory.mktemp(f"wh-{request.param}"), request)


def settings_for(catalog: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings of a fresh warehouse in ``tmp_path`` on the given catalog."""
    if catalog == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return load_settings(warehouse=tmp_path / "wh", catalog="postgres", postgres_dsn=server.create_database(),
                             data_path="")
    return load_settings(warehouse=tmp_path / "wh", catalog=catalog, postgres_dsn="", data_path="")


@pytest.fixture(params=CATALOGS)
def catalog_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A fresh warehouse on each catalog the project supports for teams: sqlite (default) and postgres."""
    return settings_for(request.param, tmp_path, request)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process's ``load_settings()`` open the same warehouse."""
    env = dict(os.environ)
    env.update(GOVFACTS_WAREHOUSE=str(settings.warehouse), GOVFACTS_CATALOG=settings.catalog,
               GOVFACTS_POSTGRES_DSN=settings.postgres_dsn, GOVFACTS_DATA_PATH=settings.data_path)
    env.pop("GOVFACTS_FAULT", None)
    return env
