"""The database's own description says the wall is there: every tenant table forced, the app role plain."""

from __future__ import annotations

import psycopg2
import pytest
from django.db import connection

from accounts import rls

from .conftest import APP_PASSWORD, APP_ROLE, database_url
from .urls import tenant_owned_models

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_every_table_with_a_tenant_id_has_forced_row_level_security_and_the_tenant_policy(app_role):
    with connection.cursor() as cursor:
        tables = dict(rls.tenant_tables(cursor))
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relname = ANY(%s)",
            [list(tables)],
        )
        flags = {name: (enabled, forced) for name, enabled, forced in cursor.fetchall()}
        cursor.execute(
            "SELECT tablename, roles, cmd, qual, with_check FROM pg_policies "
            "WHERE schemaname = current_schema() AND policyname = %s",
            [rls.POLICY],
        )
        policies = {name: (roles, cmd, qual, check) for name, roles, cmd, qual, check in cursor.fetchall()}
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relispartition "
            "AND c.relname LIKE 'usage_event_p%%'"
        )
        event_partitions = cursor.fetchone()[0]

    # Every Django model with a tenant (ours and any installed app's) is among them, partitions too.
    model_tables = {m._meta.db_table for m in tenant_owned_models()}
    assert len(model_tables) >= 20
    assert model_tables <= set(tables)
    assert event_partitions > 0 and len(tables) >= len(model_tables) + event_partitions
    for table, nullable in tables.items():
        assert flags[table] == (True, True), f"{table}: row-level security not enabled and forced"
        roles, cmd, qual, check = policies[table]
        assert roles == ["public"] and cmd == "ALL", table
        expected = "(NOT (tenant_id IS DISTINCT FROM" if nullable else "(tenant_id = tw_current_tenant())"
        assert qual.startswith(expected) and qual == check, f"{table}: {qual}"


def test_the_app_role_is_neither_superuser_nor_bypassrls_nor_an_owner_while_the_suites_role_is(app_role):
    with psycopg2.connect(database_url(user=APP_ROLE, password=APP_PASSWORD)) as conn, conn.cursor() as cursor:
        assert rls.role_problems(cursor) == []
        cursor.execute("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False, False)
    with connection.cursor() as cursor:  # the suite's superuser: the same check refuses it
        assert any("superuser" in problem for problem in rls.role_problems(cursor))


def test_the_tenant_lookup_functions_return_tenant_ids_only_and_only_the_app_role_may_call_them(app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, p.prosecdef, pg_get_function_result(p.oid), "
            "has_function_privilege('public', p.oid, 'EXECUTE'), has_function_privilege(%s, p.oid, 'EXECUTE') "
            "FROM pg_proc p WHERE p.proname LIKE 'tw\\_tenant\\_ids\\_%%'",
            [APP_ROLE],
        )
        functions = {row[0]: row[1:] for row in cursor.fetchall()}
    assert set(functions) >= {"tw_tenant_ids_accounts_apikey__prefix", "tw_tenant_ids_accounts_membership__user_id"}
    for name, (definer, result, public, app) in functions.items():
        assert (definer, result, public, app) == (True, "SETOF bigint", False, True), name
