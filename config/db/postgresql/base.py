"""Django's PostgreSQL backend, plus the tenant for row-level security, set per transaction.

Every statement runs with `app.tenant_id` set *locally* (`set_config(..., true)`: it ends with the
transaction), from the tenant context in accounts.tenancy:

- inside a transaction (an atomic block) it is set before the first statement, and again whenever the
  tenant context changes or a savepoint rollback may have undone it;
- in autocommit each statement is its own transaction, so `SELECT set_config(...); <statement>` is sent
  as one simple-query message: PostgreSQL runs the two as one implicit transaction and psycopg2 returns
  the statement's result.

A per-connection setting (`SET app.tenant_id`) would outlive the request on a persistent or pooled
connection (PgBouncer in transaction mode hands the same server connection to the next client); a
transaction-local one cannot. No tenant: nothing is set and the policies match no tenant-owned row.

The first connection of each process also checks the role (accounts.rls.check_app_role): outside
DEBUG a superuser, a BYPASSRLS role or the tables' owner is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

_UNKNOWN = object()  # a savepoint rollback may have undone what was set: send it again


def set_tenant_sql(tenant_id: int | None) -> str:
    # An int (checked in accounts.tenancy) inlined, never a parameter: the string must hold no '%'.
    value = "" if tenant_id is None else str(int(tenant_id))
    return f"SELECT set_config('app.tenant_id', '{value}', true); "


class TenantCursorMixin:
    db: DatabaseWrapper

    def _tenant_prefix(self) -> str:
        from accounts.tenancy import current_tenant_id  # not at import: models load this backend

        db = self.db
        wanted = current_tenant_id()
        if db.get_autocommit():
            return "" if wanted is None else set_tenant_sql(wanted)
        if db.rls_tenant_in_transaction is not _UNKNOWN and db.rls_tenant_in_transaction == wanted:
            return ""
        db.rls_tenant_in_transaction = wanted
        return set_tenant_sql(wanted)

    def execute(self, sql: Any, params: Any = None) -> Any:
        prefix = self._tenant_prefix()
        if prefix and isinstance(sql, str):
            sql = prefix + sql
        elif prefix:  # a psycopg2.sql.Composed: send the setting on its own first
            super().execute(prefix.rstrip("; "))  # type: ignore[misc]
        return super().execute(sql, params)  # type: ignore[misc]

    def executemany(self, sql: Any, param_list: Any) -> Any:
        prefix = self._tenant_prefix()
        if prefix and self.db.get_autocommit():
            # Each statement of the batch is its own transaction: each carries the setting.
            return super().executemany(prefix + sql, param_list)  # type: ignore[misc]
        if prefix:
            super().execute(prefix.rstrip("; "))  # type: ignore[misc]
        return super().executemany(sql, param_list)  # type: ignore[misc]


class TenantCursorWrapper(TenantCursorMixin, CursorWrapper):
    pass


class TenantCursorDebugWrapper(TenantCursorMixin, base.CursorDebugWrapper):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The tenant set in the open transaction (None: none yet, nothing to undo).
        self.rls_tenant_in_transaction: object = None

    def make_cursor(self, cursor: Any) -> CursorWrapper:
        return TenantCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> CursorDebugWrapper:
        return TenantCursorDebugWrapper(cursor, self)

    def on_commit(self, func: Callable[[], Any], robust: bool = False) -> None:
        """A callback runs in the tenant it was registered in, though the block that set it has ended."""
        from accounts.tenancy import current_tenant_id, tenant_context

        tenant_id = current_tenant_id()
        if tenant_id is not None:
            callback = func

            @functools.wraps(callback)
            def func() -> Any:
                with tenant_context(tenant_id):
                    return callback()

        super().on_commit(func, robust)

    def init_connection_state(self) -> None:
        super().init_connection_state()
        self.rls_tenant_in_transaction = None
        from accounts.rls import check_app_role

        check_app_role(self)

    # A transaction-local setting ends with the transaction.
    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self.rls_tenant_in_transaction = None

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self.rls_tenant_in_transaction = None

    def _set_autocommit(self, autocommit: bool) -> None:
        super()._set_autocommit(autocommit)
        self.rls_tenant_in_transaction = None

    def _savepoint_rollback(self, sid: str) -> None:
        super()._savepoint_rollback(sid)
        self.rls_tenant_in_transaction = _UNKNOWN

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self.rls_tenant_in_transaction = None
