"""URLs of the billing app: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root."""

from django.urls import path, re_path

from billing import views
from billing.api import PlanChangeViewSet

api_urlpatterns: list = [
    path("plan-changes", PlanChangeViewSet.as_view({"post": "create"}), name="plan-change-list"),
    re_path(
        r"^plan-changes/(?P<pk>[0-9]{1,18})$", PlanChangeViewSet.as_view({"get": "retrieve"}), name="plan-change-detail"
    ),
    re_path(
        r"^plan-changes/(?P<pk>[0-9]{1,18})/confirm$",
        PlanChangeViewSet.as_view({"post": "confirm"}),
        name="plan-change-confirm",
    ),
]
urlpatterns: list = [
    path("billing/stripe/webhook/<slug:tenant_slug>/", views.stripe_webhook, name="billing-stripe-webhook"),
]
