"""The base every tenant-scoped /api/v1/ view stands on.

Hazard: a view that reads tenant data without going through `tenant_queryset()` or a
selector that takes `request.tenant` can leak across tenants. `TenantScopedViewSet`
refuses subclasses that override `get_queryset`/`get_object` for that reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework import exceptions, viewsets
from rest_framework.request import Request

from accounts.api_auth import DEFAULT_SCOPE_MAP
from accounts.api_errors import json_not_found
from accounts.models import ApiKey, Tenant
from accounts.tenancy import activate_tenant

__all__ = ["DEFAULT_SCOPE_MAP", "TenantScopedViewSet", "json_not_found"]


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Resolves the tenant once from the API key and scopes every query to it.

    Subclasses implement `tenant_queryset()` (built from a selector); they may not
    override `get_queryset` or `get_object`.
    """

    scope_map: ClassVar[dict[str, str]] = DEFAULT_SCOPE_MAP
    tenant: Tenant

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_object"):
            if name in cls.__dict__ and not name.startswith("unscoped_"):
                raise TypeError(f"{cls.__name__} may not override {name}; implement tenant_queryset()")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = request.auth.tenant
        request.tenant = self.tenant
        activate_tenant(self.tenant)  # row-level security: every query of this request runs in this tenant

    def tenant_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        return self.tenant_queryset()

    def get_object(self) -> Any:
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = self.tenant_queryset().filter(**{self.lookup_field: lookup}).first()
        if obj is None:
            raise exceptions.NotFound("Not found.")
        return obj

    @property
    def actor(self) -> ApiKey:
        return self.request.auth
