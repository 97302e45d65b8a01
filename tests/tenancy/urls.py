"""The site's URLs plus probes that read every tenant-owned table with the ORM tenant filter off.

A probe answers, per tenant-owned model, which tenants' rows `Model.objects.all()` returned: with
row-level security that is the caller's tenant only, whatever the ORM forgot.
"""

from django.apps import apps
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import CustomerAccount
from config.urls import urlpatterns as site_urlpatterns


def tenant_owned_models() -> list:
    return [
        m
        for m in apps.get_models()
        if any(f.column == "tenant_id" for f in m._meta.concrete_fields) and not m._meta.proxy
    ]


def visible_tenants() -> dict[str, list]:
    """Every tenant-owned table read whole in one round trip, plus one ORM `.all()`."""
    tables = sorted({m._meta.db_table for m in tenant_owned_models()})
    union = " UNION ALL ".join(
        f"(SELECT DISTINCT %s::text, tenant_id FROM {connection.ops.quote_name(t)})" for t in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(union, tables)
        seen: dict[str, set] = {}
        for table, tenant_id in cursor.fetchall():
            seen.setdefault(table, set()).add(tenant_id)
    seen["orm:CustomerAccount.objects.all()"] = set(CustomerAccount.objects.all().values_list("tenant_id", flat=True))
    return {name: sorted(ids, key=lambda i: (i is None, i)) for name, ids in seen.items()}


class ApiProbe(APIView):
    """Through the API's own authentication (the key names the tenant), nothing scoped by the ORM."""

    def get(self, request: Request) -> Response:
        return Response(visible_tenants())


def staff_probe(request: HttpRequest) -> JsonResponse:
    """Through the staff middleware (the membership names the tenant)."""
    return JsonResponse(visible_tenants())


urlpatterns = [
    path("rls-probe/api/", ApiProbe.as_view()),
    path("rls-probe/staff/", staff_probe),
    *site_urlpatterns,
]
