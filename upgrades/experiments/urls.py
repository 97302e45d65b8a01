"""URLs of experiments: the read-only API (mounted under /api/v1/)."""

from django.urls import URLPattern, URLResolver, path, re_path

from upgrades.experiments.api import ID_PATTERN, ExperimentViewSet

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("experiments", ExperimentViewSet.as_view({"get": "list"}), name="experiment-list"),
    re_path(
        rf"^experiments/(?P<pk>{ID_PATTERN})$", ExperimentViewSet.as_view({"get": "retrieve"}), name="experiment-detail"
    ),
]
