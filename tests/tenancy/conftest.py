"""Row-level security tests: an unprivileged app role in the test database, and PgBouncer.

The rest of the suite connects as the postgres superuser (row-level security does not apply to it);
these fixtures create `tw_rls_app` (LOGIN, no superuser, no BYPASSRLS, owns nothing), grant it what
`migrate` grants the app role (accounts.rls.apply_row_level_security) and point Django's connections
at it for the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from accounts import rls
from tests.services import free_port, port_open, require_postgres, unavailable

APP_ROLE = "tw_rls_app"
APP_PASSWORD = "tw-rls-app-pw"  # trust auth locally; a password so URLs look like production's
SUITE_USER: list[str] = []  # (user, password) the suite connects as, before any switch


def ensure_role(cursor, name: str, password: str) -> None:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    if cursor.fetchone() is None:
        cursor.execute(
            f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD %s', [password]
        )


def drop_role(cursor, name: str) -> None:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    if cursor.fetchone() is not None:
        cursor.execute(f'DROP OWNED BY "{name}"')  # its grants in this database
        cursor.execute(f'DROP ROLE "{name}"')


def database_url(*, user: str, password: str = "", host: str | None = None, port: int | None = None) -> str:
    db = settings.DATABASES["default"]
    host = host or db.get("HOST") or "127.0.0.1"
    port = port or db.get("PORT") or 5432
    auth = f"{user}:{password}" if password else user
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def superuser_sql(*statements: str) -> None:
    """Run statements as the suite's superuser on the test database, committed at once (roles, grants)."""
    import psycopg2

    conn = psycopg2.connect(database_url(user=SUITE_USER[0], password=SUITE_USER[1]))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def app_role(django_db_setup, django_db_blocker) -> str:
    """The app role, with the grants `migrate` gives DATABASE_URL's role (granted here as the owner)."""
    if not settings.IS_POSTGRES:
        unavailable("row-level security tests need PostgreSQL (set DATABASE_URL)")
    # Only on the test database (pytest-django sets it up only for sessions with a django_db test).
    assert connection.settings_dict["NAME"].startswith("test_"), "mark the test django_db"
    db = settings.DATABASES["default"]
    SUITE_USER[:] = [db.get("USER") or "postgres", db.get("PASSWORD") or ""]
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            ensure_role(cursor, APP_ROLE, APP_PASSWORD)
        rls.apply_row_level_security(app_role=APP_ROLE)
        connection.close()
    return APP_ROLE


class ConnectAs:
    """Points the default database alias (every thread's connection) at another role, host or port."""

    KEYS = ("USER", "PASSWORD", "HOST", "PORT", "CONN_MAX_AGE")

    def __init__(self) -> None:
        self.db = settings.DATABASES["default"]
        self.saved = {key: self.db.get(key) for key in self.KEYS}

    def switch(self, **values) -> None:
        connections.close_all()
        for key, value in values.items():
            self.db[key] = value
            connection.settings_dict[key] = value  # the main thread's wrapper (same dict, but be sure)

    def restore(self) -> None:
        connections.close_all()
        for key, value in self.saved.items():
            self.db[key] = value
            connection.settings_dict[key] = value


@pytest.fixture
def connect_as(transactional_db, app_role) -> Iterator[ConnectAs]:
    """Call .switch(USER=...) after creating data as the superuser; restored (as superuser) before flush."""
    require_postgres()
    switcher = ConnectAs()
    try:
        yield switcher
    finally:
        switcher.restore()


@pytest.fixture
def as_app_role(connect_as: ConnectAs) -> ConnectAs:
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    return connect_as


@pytest.fixture
def pgbouncer(app_role) -> Iterator[int]:
    """Debian's PgBouncer on a free port in transaction mode, one server connection per pool: every
    client shares it, so anything set per connection would reach the next client."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        unavailable("pgbouncer is not installed (apt-get install pgbouncer)")
    db = settings.DATABASES["default"]
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tw-rls-pgbouncer-"))
    (workdir / "userlist.txt").write_text(f'"{APP_ROLE}" "{APP_PASSWORD}"\n"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={db.get('HOST') or '127.0.0.1'} port={db.get('PORT') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
        "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
    )
    os.chmod(workdir, 0o755)
    for name in ("userlist.txt", "pgbouncer.ini"):
        os.chmod(workdir / name, 0o644)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]  # PgBouncer refuses to run as root
    log = (workdir / "pgbouncer.log").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pgbouncer did not start: " + (workdir / "pgbouncer.log").read_text())
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
