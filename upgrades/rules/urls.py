"""URLs of trigger rules: `api_urlpatterns` mount under /api/v1/ (before the accounts router's detail route)."""

from django.urls import path

from upgrades.rules.api import AccountSignalsViewSet

api_urlpatterns: list = [
    path(
        "accounts/<str:external_id>/signals",
        AccountSignalsViewSet.as_view({"get": "list"}),
        name="rules-account-signals",
    ),
]
urlpatterns: list = []
