from django.http import HttpRequest

from accounts.models import Tenant
from accounts.selectors import memberships_for_user


def tenant(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/api/"):
        return {}
    if user.is_superuser:
        choices = [(t.pk, t.name) for t in Tenant.objects.order_by("name")]
    else:
        choices = [(m.tenant_id, m.tenant.name) for m in memberships_for_user(user)]
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "tenant_choices": choices,
    }
