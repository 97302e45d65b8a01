from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Membership, Tenant

SESSION_TENANT_KEY = "tierwise_tenant_id"


def resolve_staff_tenant(request: HttpRequest) -> tuple[Tenant | None, Membership | None]:
    """The tenant a signed-in staff member is working in: the one they switched to, else their first."""
    user = request.user
    if not user.is_authenticated:
        return None, None
    wanted = request.session.get(SESSION_TENANT_KEY)
    memberships = Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")
    chosen = next((m for m in memberships if m.tenant_id == wanted), None) or memberships.first()
    if chosen is not None:
        return chosen.tenant, chosen
    if user.is_superuser and wanted:
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
        if request.path.startswith("/api/"):
            request.tenant, request.membership = None, None
        else:
            request.tenant, request.membership = resolve_staff_tenant(request)
        if request.tenant is None:
            return self.get_response(request)
        # Stored in UTC, shown in the tenant's time zone.
        timezone.activate(zoneinfo.ZoneInfo(request.tenant.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
