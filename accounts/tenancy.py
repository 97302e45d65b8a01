"""Tenant-owned models and the queryset every read starts from."""

from __future__ import annotations

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
