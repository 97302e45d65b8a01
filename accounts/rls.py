"""Row-level security on PostgreSQL: the wall behind the ORM's tenant filter.

Every table with a `tenant_id` column (found in the catalogue, so future tables, partitions and
third-party tables count too) gets, on every `migrate` (post_migrate, run as the owner, idempotent):

- `ENABLE` and `FORCE ROW LEVEL SECURITY` and the policy `tw_tenant`:
  `tenant_id = tw_current_tenant()` (the tenant the backend sets per transaction, config/db/postgresql;
  NULL when none is set, so nothing matches). A nullable `tenant_id` (platform rows such as audit
  entries without a tenant) uses `IS NOT DISTINCT FROM`: platform rows only outside any tenant.
- for a migrating role that is neither superuser nor BYPASSRLS, a policy `tw_owner` for that role only,
  so data migrations and the lookup functions below see all rows (FORCE applies to the owner too).
- grants to the app role (DATABASE_URL's user) on all tables and sequences, and default privileges
  for the tables and sequences the owner creates later.
- one SECURITY DEFINER function per registered lookup (TENANT_LOOKUPS), the audited way to find which
  tenant a row belongs to before the tenant is known; it returns tenant ids only.

`check_app_role` is called by the backend on each process's first connection: outside DEBUG the app
refuses to run as a superuser, a BYPASSRLS role, or a role that owns (or is a member of the owner of)
the tables, since row-level security would not hold for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models

logger = logging.getLogger(__name__)

POLICY = "tw_tenant"
OWNER_POLICY = "tw_owner"
CURRENT_TENANT_FUNCTION = "tw_current_tenant"

# (model label, field name): the only pre-tenant lookups. Each one is a SECURITY DEFINER function
# returning the tenant ids of the rows whose field equals the value.
TENANT_LOOKUPS: set[tuple[str, str]] = {
    ("accounts.ApiKey", "prefix"),  # API-key authentication
    ("accounts.Membership", "user"),  # a person's workspaces at sign-in and in the switcher
}


def register_tenant_lookup(model_label: str, field: str) -> None:
    """For an app's AppConfig.ready(): allow `lookup_tenant_ids(model, field, value)` (e.g. a token)."""
    TENANT_LOOKUPS.add((model_label, field))


# name -> `CREATE OR REPLACE FUNCTION name(...) ... SECURITY DEFINER ...`: the few things the app role may
# ask the owner to do (e.g. create next month's event partition). Created by migrate, EXECUTE for the app.
OWNER_FUNCTIONS: dict[str, str] = {}


def register_owner_function(name: str, create_sql: str) -> None:
    """For an app's AppConfig.ready(): a narrow SECURITY DEFINER function migrate creates as the owner.

    A function that creates a tenant table calls `tw_apply_tenant_policy(table)` on it."""
    if "SECURITY DEFINER" not in create_sql or "search_path" not in create_sql:
        raise ImproperlyConfigured(f"{name}: an owner function is SECURITY DEFINER with a fixed search_path")
    OWNER_FUNCTIONS[name] = create_sql


def uses_rls(connection: Any) -> bool:
    from config.db.postgresql.base import DatabaseWrapper

    return isinstance(connection, DatabaseWrapper)


def _lookup_function_name(table: str, column: str) -> str:
    name = f"tw_tenant_ids_{table}__{column}"
    if len(name) > 63:
        raise ImproperlyConfigured(f"tenant lookup function name too long: {name}")
    return name


def lookup_tenant_ids(model: type[models.Model], field: str, value: object, *, using: str = "default") -> list[int]:
    if (model._meta.label, field) not in TENANT_LOOKUPS:
        raise ValueError(f"{model._meta.label}.{field} is not a registered tenant lookup (accounts.rls)")
    if value is None:
        return []
    connection = connections[using]
    if not uses_rls(connection):
        # SQLite (the embedded shape): no row-level security, the ORM is the wall.
        return sorted(set(model._base_manager.filter(**{field: value}).values_list("tenant_id", flat=True)))
    column = model._meta.get_field(field).column
    function = _lookup_function_name(model._meta.db_table, column)
    with connection.cursor() as cursor:
        # The function name comes from the registry and the schema, never from the caller.
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(function)}(%s)", [str(value)])  # noqa: S608
        return sorted(row[0] for row in cursor.fetchall())


# --- migrate: policies, grants, lookup functions ---------------------------------------------------


def app_role_name(using: str = "default") -> str | None:
    """The role the app runs as: DATABASE_URL's user (settings, untouched by the owner swap in migrate)."""
    return settings.DATABASES[using].get("USER") or None


def tenant_tables(cursor: Any) -> list[tuple[str, bool]]:
    """(table, tenant_id is nullable) for every table and partitioned table with a tenant_id column."""
    cursor.execute(
        """
        SELECT c.relname, NOT a.attnotnull
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
        ORDER BY c.relname
        """
    )
    return [(name, nullable) for name, nullable in cursor.fetchall()]


APPLY_POLICY = "tw_apply_tenant_policy"
# One table: enabled, forced, the tenant policy (IS NOT DISTINCT FROM for a nullable tenant_id), and for an
# owner that is neither superuser nor BYPASSRLS a policy of its own. Owner-only (EXECUTE revoked from PUBLIC).
APPLY_POLICY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {APPLY_POLICY}(t regclass) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    nullable boolean;
    privileged boolean;
    expr text;
BEGIN
    SELECT NOT a.attnotnull INTO nullable FROM pg_attribute a
     WHERE a.attrelid = t AND a.attname = 'tenant_id' AND NOT a.attisdropped;
    IF nullable IS NULL THEN
        RAISE EXCEPTION '% has no tenant_id column', t;
    END IF;
    expr := CASE WHEN nullable THEN 'tenant_id IS NOT DISTINCT FROM {CURRENT_TENANT_FUNCTION}()'
                 ELSE 'tenant_id = {CURRENT_TENANT_FUNCTION}()' END;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS {POLICY} ON %s', t);
    EXECUTE format('CREATE POLICY {POLICY} ON %s USING (%s) WITH CHECK (%s)', t, expr, expr);
    EXECUTE format('DROP POLICY IF EXISTS {OWNER_POLICY} ON %s', t);
    SELECT rolsuper OR rolbypassrls INTO privileged FROM pg_roles WHERE rolname = current_user;
    IF NOT privileged THEN
        EXECUTE format('CREATE POLICY {OWNER_POLICY} ON %s TO %I USING (true) WITH CHECK (true)', t, current_user);
    END IF;
END
$fn$
"""  # noqa: S608 - constants only


def policy_expression(nullable: bool) -> str:
    op = "IS NOT DISTINCT FROM" if nullable else "="
    return f"tenant_id {op} {CURRENT_TENANT_FUNCTION}()"


def apply_row_level_security(using: str = "default", *, app_role: str | None = None) -> list[str]:
    """Idempotent: RLS enabled, forced and the policy on every tenant table, grants for the app role,
    the lookup functions. Run as the owner (migrate). Returns the tenant tables."""
    connection = connections[using]
    app_role = app_role if app_role is not None else app_role_name(using)
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        me, schema = cursor.fetchone()
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {CURRENT_TENANT_FUNCTION}() RETURNS bigint LANGUAGE sql STABLE "
            "PARALLEL SAFE AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::bigint $$"
        )
        cursor.execute(APPLY_POLICY_FUNCTION)
        cursor.execute(f"REVOKE ALL ON FUNCTION {APPLY_POLICY}(regclass) FROM PUBLIC")
        tables = tenant_tables(cursor)
        for table, _nullable in tables:
            cursor.execute(f"SELECT {APPLY_POLICY}(%s::regclass)", [f"{schema}.{table}"])
        grantee = qn(app_role) if app_role and app_role != me else None
        if grantee:
            s = qn(schema)
            cursor.execute(f"GRANT USAGE ON SCHEMA {s} TO {grantee}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {grantee}")
            cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {grantee}")
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {grantee}"
            )
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {grantee}"
            )
        for label, field_name in sorted(TENANT_LOOKUPS):
            try:
                model = apps.get_model(label)
            except LookupError:
                continue
            table, column = model._meta.db_table, model._meta.get_field(field_name).column
            cursor.execute(
                "SELECT format_type(a.atttypid, NULL) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attname = %s",
                [f"{schema}.{table}", column],
            )
            row = cursor.fetchone()
            if row is None:
                continue
            function = qn(_lookup_function_name(table, column))
            cursor.execute(
                f"CREATE OR REPLACE FUNCTION {function}(v text) RETURNS SETOF bigint LANGUAGE sql STABLE "  # noqa: S608
                f"SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS "
                f"$$ SELECT DISTINCT tenant_id FROM {qn(schema)}.{qn(table)} WHERE {qn(column)} = v::{row[0]} $$"
            )
            cursor.execute(f"REVOKE ALL ON FUNCTION {function}(text) FROM PUBLIC")
            if grantee:
                cursor.execute(f"GRANT EXECUTE ON FUNCTION {function}(text) TO {grantee}")
        for name, create_sql in sorted(OWNER_FUNCTIONS.items()):
            cursor.execute(create_sql)
            cursor.execute("SELECT oid::regprocedure::text FROM pg_proc WHERE proname = %s", [name])
            for (signature,) in cursor.fetchall():
                cursor.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
                if grantee:
                    cursor.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {grantee}")
    return [table for table, _ in tables]


def on_post_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    if kwargs.get("plan") is None:
        return  # `flush` (every transactional test's teardown) empties tables; their policies are untouched
    if uses_rls(connections[using]):
        tables = apply_row_level_security(using)
        logger.info("row-level security on %d tenant tables", len(tables))


# --- the role the app runs as ----------------------------------------------------------------------

_checked: set[tuple] = set()
_migrating = False  # set by manage.py migrate (accounts/management/commands/migrate.py): it runs as the owner


@contextmanager
def migrating() -> Iterator[None]:
    global _migrating
    previous, _migrating = _migrating, True
    try:
        yield
    finally:
        _migrating = previous


def check_startup(using: str = "default") -> None:
    """Connect now, so a process started as a privileged role fails at start, not at its first request."""
    connection = connections[using]
    if uses_rls(connection):
        connection.ensure_connection()


def role_problems(cursor: Any) -> list[str]:
    """Why the connected role must not run the app (empty: it may)."""
    cursor.execute(
        """
        SELECT r.rolname, r.rolsuper, r.rolbypassrls,
               EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
                         AND pg_has_role(current_user, c.relowner, 'MEMBER'))
        FROM pg_roles r WHERE r.rolname = current_user
        """
    )
    name, superuser, bypass, owner = cursor.fetchone()
    problems = []
    if superuser:
        problems.append(f"role {name!r} is a superuser")
    if bypass:
        problems.append(f"role {name!r} has BYPASSRLS")
    if owner:
        problems.append(f"role {name!r} owns the tables (or is a member of their owner)")
    return problems


def check_app_role(connection: Any) -> None:
    """Outside DEBUG, refuse a role row-level security does not hold for. Once per process and database."""
    if settings.DEBUG or getattr(settings, "TIERWISE_ALLOW_PRIVILEGED_DB_ROLE", False):
        return
    if _migrating:  # manage.py migrate runs as the owner
        return
    sd = connection.settings_dict
    key = (sd.get("HOST"), sd.get("PORT"), sd.get("NAME"), sd.get("USER"))
    if key in _checked:
        return
    with connection.connection.cursor() as cursor:
        problems = role_problems(cursor)
    if problems:
        raise ImproperlyConfigured(
            "Refusing to run: " + "; ".join(problems) + ". Row-level security would not keep tenants apart. "
            "Connect DATABASE_URL as the unprivileged app role and give the owner to DATABASE_OWNER_URL "
            "(used by migrate only); see README, 'Running against PostgreSQL'."
        )
    _checked.add(key)
