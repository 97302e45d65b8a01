"""URLs of the billing app: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root."""

from django.urls import path

from billing import views

api_urlpatterns: list = []
urlpatterns: list = [
    path("billing/stripe/webhook/<slug:tenant_slug>/", views.stripe_webhook, name="billing-stripe-webhook"),
]
