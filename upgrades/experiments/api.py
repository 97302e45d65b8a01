"""/api/v1/experiments: read-only — a tenant's experiments with their arms, state, plan (MDE) and results.

Thin: the query is validated here (400 with field and reason in the house shape); reads go through
selectors, figures are results.py's (intention to treat: every assigned account counts, controls too).
Other tenants' ids answer 404.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.errors import InvalidInput
from upgrades.experiments import selectors
from upgrades.experiments.results import WINDOWS
from upgrades.experiments.serializers import ExperimentSerializer, present_experiment

ID_PATTERN = r"[0-9]{1,18}"
WINDOW_PARAMETER = OpenApiParameter(
    "window", int, enum=list(WINDOWS), required=False, description="Days after assignment counted (default 30)."
)


def _window(params) -> int:
    raw = params.get("window")
    if raw is None or raw == "":
        return WINDOWS[0]
    if raw not in {str(w) for w in WINDOWS}:
        raise InvalidInput("Invalid query parameters.", details={"window": [f"One of {', '.join(map(str, WINDOWS))}."]})
    return int(raw)


class ExperimentViewSet(TenantScopedViewSet):
    """Experiments of the API key's tenant (read scope)."""

    lookup_value_regex = ID_PATTERN
    serializer_class = ExperimentSerializer

    def tenant_queryset(self):
        return selectors.list_experiments(self.tenant)

    @extend_schema(parameters=[WINDOW_PARAMETER], responses=ExperimentSerializer(many=True))
    def list(self, request: Request) -> Response:
        """Newest first, each with its results over the window."""
        window = _window(request.query_params)
        page = self.paginate_queryset(selectors.list_experiments(self.tenant))
        return self.get_paginated_response(
            [ExperimentSerializer(present_experiment(self.tenant, e, window_days=window)).data for e in page]
        )

    @extend_schema(parameters=[WINDOW_PARAMETER], responses=ExperimentSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        window = _window(request.query_params)
        experiment = selectors.get_experiment_for_tenant(self.tenant, int(pk))
        return Response(ExperimentSerializer(present_experiment(self.tenant, experiment, window_days=window)).data)
