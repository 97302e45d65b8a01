"""Signals for vendors: GET /api/v1/accounts/{external_id}/signals (what the trigger rules found for an
account, with evidence) and POST /api/v1/signals/{id}/dismiss (write scope; Idempotency-Key honoured by
the base view)."""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.models import external_id_validator
from upgrades.rules import selectors, services
from upgrades.rules.errors import InvalidInput, NotFound
from upgrades.rules.models import SignalKind, SignalState, TargetKind

_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)


class FactSerializer(serializers.Serializer):
    kind = serializers.CharField()
    numbers = serializers.DictField(required=False)
    sentence = serializers.CharField()


class EvidenceSerializer(serializers.Serializer):
    sentence = serializers.CharField()
    facts = FactSerializer(many=True)
    evaluated_at = serializers.DateTimeField()


class SignalRuleSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class SignalTargetSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(source="target_kind", choices=TargetKind.choices)
    key = serializers.CharField(source="target_key", allow_blank=True)


class SignalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(source="account.external_id")
    kind = serializers.ChoiceField(choices=SignalKind.choices)
    rule = SignalRuleSerializer()
    evidence = EvidenceSerializer()
    state = serializers.ChoiceField(choices=SignalState.choices)
    priority = serializers.IntegerField()
    suggested = SignalTargetSerializer(source="*")
    requires_csm_review = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True, help_text="When it was acted on, dismissed or expired.")
    closed_reason = serializers.CharField(allow_blank=True, help_text="Why it was dismissed or expired.")


class _StrictCharField(serializers.CharField):
    """Text only: DRF's CharField would take 5 or true and store their str()."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DismissInputSerializer(serializers.Serializer):
    reason = _StrictCharField(max_length=500, help_text="Why the signal is not worth acting on (kept, audited).")


class AccountSignalsViewSet(TenantScopedViewSet):
    """Signals of one account, newest first (read scope). Foreign and unknown accounts answer 404."""

    serializer_class = SignalSerializer

    def tenant_queryset(self):
        return selectors.list_signals(self.tenant)

    @extend_schema(
        parameters=[OpenApiParameter("state", str, enum=SignalState.values, required=False)],
        responses=SignalSerializer(many=True),
    )
    def list(self, request: Request, external_id: str) -> Response:
        if not _EXTERNAL_ID.match(external_id):
            raise NotFound(f"No account {external_id!r}.")
        state = request.query_params.get("state") or None
        if state is not None and state not in SignalState.values:
            raise InvalidInput(
                f"Unknown state; use one of {', '.join(SignalState.values)}.", details={"state": ["Unknown state."]}
            )
        account = selectors.get_account_by_external_id(self.tenant, external_id)
        page = self.paginate_queryset(selectors.list_signals(self.tenant, account=account, state=state))
        return self.get_paginated_response(SignalSerializer(page, many=True).data)


class SignalViewSet(TenantScopedViewSet):
    """One signal by id: dismiss it. Other tenants' and unknown ids answer 404."""

    lookup_value_regex = r"[0-9]{1,18}"
    serializer_class = SignalSerializer

    def tenant_queryset(self):
        return selectors.list_signals(self.tenant)

    @extend_schema(request=DismissInputSerializer, responses={200: SignalSerializer})
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        signal = self.get_object()
        data = DismissInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signal = services.dismiss_signal(
            self.tenant, signal=signal, actor=self.actor, reason=data.validated_data["reason"]
        )
        signal = selectors.get_signal_for_tenant(self.tenant, signal.pk)
        return Response(SignalSerializer(signal).data, status=status.HTTP_200_OK)
