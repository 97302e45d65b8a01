"""Tenant-owned models, the queryset every read starts from, and the tenant context."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from accounts.models import Tenant


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | int) -> TenantQuerySet:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        if tenant_id is None:
            raise ValueError("for_tenant() needs a saved tenant")
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    """Every tenant-owned table carries a non-null tenant and is read through for_tenant()."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+", editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class AppendOnly(models.Model):
    """History tables (audit log, licence changes, events): a row is written once and never updated."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError(f"{self._meta.verbose_name_plural.capitalize()} are append-only")
        super().save(*args, **kwargs)


# --- The tenant context: which tenant this request, task or command works in ----------------
#
# The ORM scopes reads with for_tenant(); on PostgreSQL the database enforces the same wall with
# row-level security, reading the tenant the backend (config/db/postgresql) sets per transaction from
# this context. No tenant set: every tenant-owned table looks empty.

_current_tenant: ContextVar[int | None] = ContextVar("tierwise_tenant_id", default=None)


def _tenant_id(tenant: Tenant | int | None) -> int | None:
    if tenant is None:
        return None
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int):
        raise ValueError(f"not a tenant id: {tenant!r}")
    return tenant_id


def current_tenant_id() -> int | None:
    """The tenant the current request, task or command works in, or None."""
    return _current_tenant.get()


@contextmanager
def tenant_context(tenant: Tenant | int | None) -> Iterator[None]:
    """Work inside one tenant (None: no tenant, tenant-owned tables look empty) until the block ends."""
    token = _current_tenant.set(_tenant_id(tenant))
    try:
        yield
    finally:
        _current_tenant.reset(token)


def activate_tenant(tenant: Tenant | int | None) -> None:
    """Set the tenant for the rest of the current scope (a request: the middleware's `tenant_scope` ends it).

    For the one place per path where the tenant becomes known (after API-key auth, in the staff
    middleware, on portal session load); elsewhere prefer `tenant_context`.
    """
    _current_tenant.set(_tenant_id(tenant))


@contextmanager
def tenant_scope() -> Iterator[None]:
    """A fresh scope with no tenant, restored on exit: wraps each request and each task."""
    token = _current_tenant.set(None)
    try:
        yield
    finally:
        _current_tenant.reset(token)


def each_tenant() -> Iterator[Tenant]:
    """Every tenant in turn, each inside its own tenant context: how sweeps across tenants run."""
    from accounts.models import Tenant

    for tenant in Tenant.objects.order_by("pk"):
        with tenant_context(tenant):
            yield tenant


def lookup_tenant_ids(model: type[models.Model], field: str, value: object) -> list[int]:
    """The tenants owning rows of `model` whose `field` equals `value`, before any tenant is known.

    The narrow way round row-level security for the few lookups that find the tenant (an API key by
    its prefix, a person's memberships at sign-in, an invitation or portal token): only pairs
    registered in accounts.rls.TENANT_LOOKUPS, answered on PostgreSQL by a SECURITY DEFINER function
    that returns tenant ids and nothing else. Read the rows themselves inside `tenant_context`.
    """
    from accounts import rls

    return rls.lookup_tenant_ids(model, field, value)


# --- Celery: a task taking `tenant_id` first (or by name) runs inside that tenant ----------------
_task_tokens: dict[str, Token] = {}
_first_params: dict[str, str | None] = {}


def _first_param(task: object) -> str | None:
    name = getattr(task, "name", None) or repr(task)
    if name not in _first_params:
        try:
            params = list(inspect.signature(task.run).parameters)  # type: ignore[attr-defined]
        except (TypeError, ValueError, AttributeError):
            params = []
        _first_params[name] = params[0] if params else None
    return _first_params[name]


def enter_task_tenant(task_id: str | None, task: object, args: tuple, kwargs: dict) -> None:
    tenant_id = kwargs.get("tenant_id")
    if tenant_id is None and args and _first_param(task) == "tenant_id":
        tenant_id = args[0]
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int):
        tenant_id = None  # sweeps across tenants loop with each_tenant()
    token = _current_tenant.set(tenant_id)
    if task_id is not None:
        _task_tokens[task_id] = token


def leave_task_tenant(task_id: str | None) -> None:
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    try:
        if token is not None:
            _current_tenant.reset(token)
            return
    except ValueError:  # set in another context
        pass
    _current_tenant.set(None)


def platform_row_context(tenant: Tenant | int | None) -> AbstractContextManager[None]:
    """Where a row that may have no tenant is written (audit entries, outbox mail): a platform row (no
    tenant) outside any tenant, since row-level security shows and accepts those only there; a tenant's
    row in the current context, unchanged (never switched to another tenant)."""
    return tenant_context(None) if tenant is None else nullcontext()
