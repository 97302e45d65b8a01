from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Membership, Tenant
from accounts.tenancy import activate_tenant, lookup_tenant_ids, tenant_context, tenant_scope

SESSION_TENANT_KEY = "tierwise_tenant_id"


def staff_tenants(user: object) -> list[Tenant]:
    """The tenants a person works in, by name. Memberships are tenant-owned (row-level security), so the
    person's tenants are found first (accounts.rls lookup) and each membership is read inside its tenant."""
    candidates = Tenant.objects.filter(pk__in=lookup_tenant_ids(Membership, "user", user.pk))  # type: ignore[attr-defined]
    found = []
    for tenant in candidates.order_by("name"):
        with tenant_context(tenant):
            if Membership.objects.filter(user=user, tenant=tenant).exists():
                found.append(tenant)
    return found


def resolve_staff_tenant(request: HttpRequest) -> tuple[Tenant | None, Membership | None]:
    """The tenant a signed-in staff member is working in: the one they switched to, else their first."""
    user = request.user
    if not user.is_authenticated:
        return None, None
    wanted = request.session.get(SESSION_TENANT_KEY)
    tenants = sorted(staff_tenants(user), key=lambda t: t.pk != wanted)  # the one they switched to, else first
    if tenants:
        with tenant_context(tenants[0]):
            membership = Membership.objects.filter(user=user, tenant=tenants[0]).select_related("tenant").first()
        return tenants[0], membership
    if user.is_superuser and wanted:
        # Platform superusers work inside the tenant they switched to.
        return Tenant.objects.filter(pk=wanted).first(), None
    return None, None


class StaffTenantMiddleware:
    """Sets request.tenant and request.membership for staff pages (admin, console).

    The API resolves its tenant from the key instead (accounts.api_base), and the
    portal from its session, so /api/ is skipped here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Each request starts with no tenant and leaves none behind (row-level security reads it per
        # transaction); the API activates its tenant after key auth, the portal on session load.
        with tenant_scope():
            if request.path.startswith("/api/"):
                request.tenant, request.membership = None, None
            else:
                request.tenant, request.membership = resolve_staff_tenant(request)
            if request.tenant is None:
                return self.get_response(request)
            activate_tenant(request.tenant)
            # Stored in UTC, shown in the tenant's time zone.
            timezone.activate(zoneinfo.ZoneInfo(request.tenant.time_zone))
            try:
                return self.get_response(request)
            finally:
                timezone.deactivate()
