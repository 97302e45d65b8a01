"""The roles contract: migrate runs as DATABASE_OWNER_URL and leaves the app role working; outside
DEBUG the app will not start as a role row-level security does not hold for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.db import connection

from accounts import rls
from tests.services import require_postgres

from .conftest import APP_PASSWORD, APP_ROLE, SUITE_USER, database_url, drop_role, ensure_role, superuser_sql

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
ROOT = Path(__file__).resolve().parents[2]


def run(code_or_args: str | list[str], **env: str) -> subprocess.CompletedProcess:
    """A fresh process with production settings (no DEBUG) and the given environment."""
    args = [sys.executable, "-c", code_or_args] if isinstance(code_or_args, str) else [sys.executable, *code_or_args]
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "rls-test-secret-key-0123456789abcdef0123456789abcdef",
        "DEBUG": "",  # empty means not set: production
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "memory://",
        **env,
    }
    return subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


STARTS = "import config.wsgi; print('started')"


def test_outside_debug_the_app_refuses_to_start_as_a_superuser(app_role):
    result = run(STARTS, DATABASE_URL=database_url(user=SUITE_USER[0], password=SUITE_USER[1]))
    assert result.returncode != 0
    assert "Refusing to run" in result.stderr and "is a superuser" in result.stderr, result.stderr[-2000:]


def test_outside_debug_the_app_refuses_to_start_as_a_member_of_the_tables_owner(app_role):
    superuser_sql(
        "DROP ROLE IF EXISTS tw_rls_owner_member",
        "CREATE ROLE tw_rls_owner_member LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'pw'",
        f'GRANT "{SUITE_USER[0]}" TO tw_rls_owner_member',  # the suite's user owns the tables
    )
    try:
        result = run(STARTS, DATABASE_URL=database_url(user="tw_rls_owner_member", password="pw"))
        assert result.returncode != 0
        assert "owns the tables" in result.stderr, result.stderr[-2000:]
        # A Celery worker refuses too, before taking any task.
        worker = run(
            ["-m", "celery", "-A", "config", "worker", "-P", "solo", "--without-gossip", "--without-mingle"],
            DATABASE_URL=database_url(user="tw_rls_owner_member", password="pw"),
        )
        assert worker.returncode != 0 and "Refusing to run" in worker.stdout + worker.stderr
    finally:
        superuser_sql(f'REVOKE "{SUITE_USER[0]}" FROM tw_rls_owner_member', "DROP ROLE tw_rls_owner_member")


def test_outside_debug_the_app_starts_as_the_unprivileged_app_role_and_in_debug_as_anyone(app_role):
    result = run(STARTS, DATABASE_URL=database_url(user=APP_ROLE, password=APP_PASSWORD))
    assert result.returncode == 0 and "started" in result.stdout, result.stderr[-2000:]
    debug = run(STARTS, DATABASE_URL=database_url(user=SUITE_USER[0], password=SUITE_USER[1]), DEBUG="1")
    assert debug.returncode == 0, debug.stderr[-2000:]


@pytest.mark.django_db(transaction=True)
def test_migrate_with_database_owner_url_leaves_a_new_app_role_able_to_work(two_tenants):
    require_postgres()
    a, b = two_tenants
    role = "tw_rls_migrated"
    with connection.cursor() as cursor:
        drop_role(cursor, role)
        ensure_role(cursor, role, "pw")
    try:
        app_url = database_url(user=role, password="pw")
        before = psycopg2.connect(app_url)
        with before, before.cursor() as cursor, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("SELECT count(*) FROM accounts_customeraccount")
        before.close()

        result = run(
            ["manage.py", "migrate", "--noinput"],
            DATABASE_URL=app_url,
            DATABASE_OWNER_URL=database_url(user=SUITE_USER[0], password=SUITE_USER[1]),
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

        conn = psycopg2.connect(app_url)
        try:
            with conn, conn.cursor() as cursor:
                assert rls.role_problems(cursor) == []  # migrate did not make it an owner
                cursor.execute("SELECT count(*) FROM accounts_customeraccount")
                assert cursor.fetchone()[0] == 0  # no tenant set: nothing
                cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(a.tenant.pk)])
                cursor.execute("SELECT DISTINCT tenant_id FROM accounts_customeraccount")
                assert cursor.fetchall() == [(a.tenant.pk,)]
                cursor.execute(
                    "INSERT INTO accounts_contact"
                    " (tenant_id, account_id, email, name, role, marketing_consent, locale, created_at)"
                    " SELECT tenant_id, id, 'new@customer.test', 'New', '', false, '', now()"
                    " FROM accounts_customeraccount RETURNING id"
                )
                assert cursor.fetchone()[0] > 0  # tables and their identity sequences are granted
                cursor.execute(
                    "SELECT * FROM tw_tenant_ids_accounts_membership__user_id(%s)", [str(a.staff["owner"].pk)]
                )
                assert cursor.fetchall() == [(a.tenant.pk,)]
        finally:
            conn.close()
        # Tables the owner creates later are granted too (default privileges).
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE tw_rls_created_later (id int)")
        try:
            conn = psycopg2.connect(app_url)
            with conn, conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM tw_rls_created_later")
            conn.close()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE tw_rls_created_later")
    finally:
        with connection.cursor() as cursor:
            drop_role(cursor, role)
