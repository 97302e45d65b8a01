from django.http import HttpRequest

from accounts.middleware import staff_tenants
from accounts.models import Tenant


def tenant(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/api/"):
        return {}
    if user.is_superuser:
        choices = [(t.pk, t.name) for t in Tenant.objects.order_by("name")]
    else:
        choices = [(t.pk, t.name) for t in staff_tenants(user)]
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "tenant_choices": choices,
    }
