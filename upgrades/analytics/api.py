"""GET /api/v1/metrics/revenue: MRR per month with its movements, NRR and GRR, for the vendor's BI.

Thin: the query is validated here (400 with field and reason in the house shape), the figures are
services.revenue_metrics' for the API key's tenant only. Definitions: upgrades/analytics/definitions.py.
"""

from __future__ import annotations

import re

import pandas as pd
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.errors import InvalidInput
from upgrades.analytics import definitions
from upgrades.analytics.revenue import GROUP_BY
from upgrades.analytics.services import revenue_metrics
from usage.throttling import ApiKeyWindowThrottle

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
MAX_MONTHS = 120


class RevenuePeriodSerializer(serializers.Serializer):
    period = serializers.CharField(help_text=definitions.MONTH)
    currency = serializers.CharField(help_text=definitions.CURRENCY_RULE)
    group = serializers.CharField(required=False, help_text="The group's value when `group_by` is given.")
    mrr_start = serializers.IntegerField(help_text=definitions.MRR_START)
    mrr_end = serializers.IntegerField(help_text=definitions.MRR_END)
    new = serializers.IntegerField(help_text=definitions.NEW)
    expansion = serializers.IntegerField(help_text=definitions.EXPANSION)
    contraction = serializers.IntegerField(help_text=definitions.CONTRACTION)
    churn = serializers.IntegerField(help_text=definitions.CHURN)
    reactivation = serializers.IntegerField(help_text=definitions.REACTIVATION)
    customers_start = serializers.IntegerField(help_text=definitions.CUSTOMERS)
    customers_end = serializers.IntegerField(help_text=definitions.CUSTOMERS)
    customers_expanded = serializers.IntegerField(help_text=definitions.UPGRADE_RATE)
    nrr = serializers.FloatField(allow_null=True, help_text=definitions.NRR)
    grr = serializers.FloatField(allow_null=True, help_text=definitions.GRR)


class RevenueMetricsSerializer(serializers.Serializer):
    periods = RevenuePeriodSerializer(many=True)
    group_by = serializers.CharField(allow_null=True)
    definitions = serializers.DictField(child=serializers.CharField())


def _month(value: str | None, field: str, errors: dict[str, list[str]]) -> pd.Period | None:
    if value is None:
        return None
    if not _MONTH.fullmatch(value):
        errors[field] = ["Use a month as YYYY-MM."]
        return None
    if int(value[:4]) < 2000:
        errors[field] = ["Months from 2000-01 on."]
        return None
    return pd.Period(value, freq="M")


def parse_query(params) -> tuple[pd.Period, pd.Period, str | None]:
    errors: dict[str, list[str]] = {}
    start = _month(params.get("from"), "from", errors)
    end = _month(params.get("to"), "to", errors)
    group_by = params.get("group_by") or None
    if group_by is not None and group_by not in GROUP_BY:
        errors["group_by"] = [f"Use one of {', '.join(GROUP_BY)}."]
    if not errors:
        this_month = pd.Period(timezone.now().strftime("%Y-%m"), freq="M")
        end = end or this_month
        start = start or end - 11
        if end > this_month + 12:
            errors["to"] = ["At most 12 months ahead."]
        elif start > end:
            errors["from"] = ["Must not be after `to`."]
        elif (end - start).n + 1 > MAX_MONTHS:
            errors["from"] = [f"At most {MAX_MONTHS} months at once."]
    if errors:
        raise InvalidInput("Invalid query parameters.", details=errors)
    return start, end, group_by


class RevenueMetricsViewSet(TenantScopedViewSet):
    """Revenue metrics of the API key's tenant (read scope)."""

    throttle_classes = [ApiKeyWindowThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                str,
                required=False,
                pattern=_MONTH.pattern,
                description="First month (default: 11 before `to`).",
            ),
            OpenApiParameter(
                "to", str, required=False, pattern=_MONTH.pattern, description="Last month (default: this month)."
            ),
            OpenApiParameter("group_by", str, enum=list(GROUP_BY), required=False, description="Split each period."),
        ],
        responses=RevenueMetricsSerializer,
    )
    def retrieve(self, request: Request) -> Response:
        """MRR per month with new, expansion, contraction, churn and reactivation (minor units; contraction and
        churn positive), NRR and GRR, per currency (never converted) and per group."""
        start, end, group_by = parse_query(request.query_params)
        periods = revenue_metrics(self.tenant, start=start, end=end, group_by=group_by)
        return Response({"periods": periods, "group_by": group_by, "definitions": definitions.ALL})
