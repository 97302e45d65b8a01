"""URLs of trigger rules: `api_urlpatterns` mount under /api/v1/ (before the accounts router's detail route)."""

from django.urls import path, re_path

from upgrades.rules.api import AccountSignalsViewSet, SignalViewSet

api_urlpatterns: list = [
    path(
        "accounts/<str:external_id>/signals",
        AccountSignalsViewSet.as_view({"get": "list"}),
        name="rules-account-signals",
    ),
    re_path(
        r"^signals/(?P<pk>[0-9]{1,18})/dismiss$",
        SignalViewSet.as_view({"post": "dismiss"}),
        name="rules-signal-dismiss",
    ),
]
urlpatterns: list = []
