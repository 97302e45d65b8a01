"""URLs of the usage app: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root.

`accounts/<id>/entitlements` is listed here, before the accounts router's
`accounts/<id>` detail route, so the two never clash.
"""

from django.urls import path

from usage.api import AccountEntitlementsViewSet, EntitlementCheckViewSet, EventIngestViewSet

api_urlpatterns: list = [
    path("events", EventIngestViewSet.as_view({"post": "create"}), name="usage-events"),
    path("entitlements/check", EntitlementCheckViewSet.as_view({"post": "create"}), name="usage-entitlement-check"),
    path(
        "accounts/<str:external_id>/entitlements",
        AccountEntitlementsViewSet.as_view({"get": "retrieve"}),
        name="usage-account-entitlements",
    ),
]
urlpatterns: list = []
