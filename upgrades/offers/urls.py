"""URLs of offers and trials: the API (mounted under /api/v1/) and staff pages."""

from django.urls import URLPattern, URLResolver, path, re_path

from upgrades.offers.api import ID_PATTERN, OfferViewSet
from upgrades.offers.api_trials import TrialViewSet

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("offers", OfferViewSet.as_view({"get": "list"}), name="offer-list"),
    re_path(rf"^offers/(?P<pk>{ID_PATTERN})$", OfferViewSet.as_view({"get": "retrieve"}), name="offer-detail"),
    re_path(rf"^offers/(?P<pk>{ID_PATTERN})/accept$", OfferViewSet.as_view({"post": "accept"}), name="offer-accept"),
    re_path(rf"^offers/(?P<pk>{ID_PATTERN})/decline$", OfferViewSet.as_view({"post": "decline"}), name="offer-decline"),
    path("trials", TrialViewSet.as_view({"post": "create"}), name="trial-list"),
    re_path(rf"^trials/(?P<pk>{ID_PATTERN})$", TrialViewSet.as_view({"get": "retrieve"}), name="trial-detail"),
]
urlpatterns: list[URLPattern | URLResolver] = []
