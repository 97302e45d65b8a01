"""URLs of the catalog app: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root."""

from django.urls import path

from catalog.api import CatalogTierViewSet

api_urlpatterns: list = [
    path("catalog/tiers", CatalogTierViewSet.as_view({"get": "list"}), name="catalog-tiers"),
    path("catalog/tiers/<str:key>", CatalogTierViewSet.as_view({"get": "retrieve"}), name="catalog-tier"),
]
urlpatterns: list = []
