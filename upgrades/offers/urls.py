"""URLs of offers and trials: the API (mounted under /api/v1/) and staff pages."""

from django.urls import URLPattern, URLResolver

api_urlpatterns: list[URLPattern | URLResolver] = []
urlpatterns: list[URLPattern | URLResolver] = []
