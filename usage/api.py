"""/api/v1/events, /api/v1/accounts/{external_id}/entitlements, /api/v1/entitlements/check.

The events endpoint reads the raw body itself: one size check, one `json.loads`, then
the service's tight validation loop. Serializers here only document the schema; a
per-event DRF serializer is far too slow for 1,000-event batches.
"""

from __future__ import annotations

import json
import re
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.models import ApiScope, external_id_validator
from catalog.models import key_validator
from usage import selectors, services
from usage.errors import InvalidInput, NotFound, PayloadTooLarge, UsageErrorCode
from usage.throttling import ApiKeyWindowThrottle

# Ids and keys are checked against their stored format before any query: a NUL byte or an
# unpaired surrogate would otherwise reach PostgreSQL and fail there as a 500.
_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
_FEATURE_KEY = re.compile(key_validator.regex.pattern)


class EventInSerializer(serializers.Serializer):
    event = serializers.CharField(max_length=100, help_text="e.g. api_call, project_created, feature_gate_hit")
    account = serializers.CharField(max_length=128, help_text="The account's external id.")
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with a time zone; within the late-arrival window.")
    idempotency_key = serializers.CharField(max_length=255, help_text="Unique per event for this tenant.")
    properties = serializers.DictField(required=False, help_text="A JSON object, at most 8 KiB.")


class EventBatchInSerializer(serializers.Serializer):
    events = EventInSerializer(many=True, help_text="1 to 1,000 events.")


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class EventBatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResultSerializer(many=True)


class FeatureStateSerializer(serializers.Serializer):
    feature = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    unit = serializers.CharField()
    allowed = serializers.BooleanField()
    limit = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=[s.value for s in selectors.EntitlementState])
    enforcement = serializers.CharField()
    soft_limit_at = serializers.IntegerField(allow_null=True)
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)


class UpgradeHintSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["tier", "addon"])
    key = serializers.CharField()
    name = serializers.CharField()
    limit = serializers.IntegerField(allow_null=True)


class CheckInSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=128)
    feature = serializers.CharField(max_length=63)
    quantity = serializers.IntegerField(min_value=0, required=False, default=1)


class CheckOutSerializer(serializers.Serializer):
    account = serializers.CharField()
    feature = serializers.CharField()
    quantity = serializers.IntegerField()
    allowed = serializers.BooleanField()
    state = serializers.CharField()
    reason = serializers.CharField()
    used = serializers.IntegerField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    upgrade = UpgradeHintSerializer(allow_null=True)


def read_json_body(request: Request, *, max_bytes: int) -> Any:
    """The body parsed once: 413 above the cap (checked before reading), 400 when not JSON."""
    raw_length = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw_length)
    except ValueError:
        raise InvalidInput("Bad Content-Length header.", code=UsageErrorCode.INVALID_BATCH)
    if length > max_bytes:
        raise PayloadTooLarge(
            f"The body is {length} bytes; the limit is {max_bytes}.", details={"max_bytes": max_bytes}
        )
    body = request._request.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"The body exceeds {max_bytes} bytes.", details={"max_bytes": max_bytes})
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # recursion: absurdly deep nesting
        raise InvalidInput(
            "The body is not valid JSON.", code=UsageErrorCode.MALFORMED_JSON, details={"body": [str(exc)[:200]]}
        )


class EventIngestViewSet(TenantScopedViewSet):
    """Usage and other product events, in batches of up to 1,000."""

    throttle_classes = [ApiKeyWindowThrottle]

    scope_map = {"POST": ApiScope.INGEST.value}

    @extend_schema(request=EventBatchInSerializer, responses={200: EventBatchOutSerializer})
    def create(self, request: Request) -> Response:
        payload = read_json_body(request, max_bytes=services.MAX_BATCH_BYTES)
        if not isinstance(payload, dict) or "events" not in payload:
            raise InvalidInput(
                'Send {"events": [...]}.',
                code=UsageErrorCode.INVALID_BATCH,
                details={"events": ["This field is required."]},
            )
        result = services.ingest_events(self.tenant, events=payload["events"], actor=self.actor)
        return Response(result.as_dict())


class AccountEntitlementsViewSet(TenantScopedViewSet):
    """Every feature of an account's plan with its limit, usage and state."""

    throttle_classes = [ApiKeyWindowThrottle]

    @extend_schema(
        responses=inline_serializer(
            "AccountEntitlements",
            {
                "account": serializers.CharField(),
                "tier": inline_serializer(
                    "PlanTier", {"key": serializers.CharField(), "name": serializers.CharField()}, allow_null=True
                ),
                "addons": serializers.ListField(child=serializers.CharField()),
                "grants": serializers.ListField(child=serializers.CharField()),
                "features": FeatureStateSerializer(many=True),
            },
        )
    )
    def retrieve(self, request: Request, external_id: str) -> Response:
        if not _EXTERNAL_ID.match(external_id):
            raise NotFound(f"No account {external_id!r}.")
        entitlements = selectors.get_account_entitlements(self.tenant, external_id=external_id)
        plan = entitlements.plan
        return Response(
            {
                "account": entitlements.external_id,
                "tier": {"key": plan.tier_key, "name": plan.tier_name} if plan.tier_key else None,
                "addons": list(plan.addon_keys),
                "grants": list(plan.grant_labels),
                "features": [state.as_dict() for state in entitlements.states()],
            }
        )


def _parse_check(data: Any) -> tuple[str, str, int]:
    errors: dict[str, list[str]] = {}
    if not isinstance(data, dict):
        raise InvalidInput(
            "Send a JSON object.",
            code=UsageErrorCode.INVALID_CHECK,
            details={"non_field_errors": ['Expected {"account", "feature", "quantity"}.']},
        )
    account, feature, quantity = data.get("account"), data.get("feature"), data.get("quantity", 1)
    if not isinstance(account, str) or not account or len(account) > 128:
        errors["account"] = ["Required: the account's external id."]
    elif not _EXTERNAL_ID.match(account):
        errors["account"] = ["Not a valid external id."]
    if not isinstance(feature, str) or not feature or len(feature) > 63:
        errors["feature"] = ["Required: a feature key."]
    elif not _FEATURE_KEY.match(feature):
        errors["feature"] = ["Not a valid feature key (lower-case letters, digits, _ or -)."]
    if type(quantity) is not int or not 0 <= quantity <= 10**12:
        errors["quantity"] = ["An integer from 0 to 10^12 (default 1)."]
    if errors:
        raise InvalidInput("Invalid input.", code=UsageErrorCode.INVALID_CHECK, details=errors)
    return account, feature, quantity


class EntitlementCheckViewSet(TenantScopedViewSet):
    """May this account use this much of this feature now? A denial is recorded as a feature-gate hit."""

    throttle_classes = [ApiKeyWindowThrottle]

    # A question, not a change: the read scope suffices (the gate-hit record is a side effect).
    scope_map = {"POST": ApiScope.READ.value}

    @extend_schema(request=CheckInSerializer, responses={200: CheckOutSerializer})
    def create(self, request: Request) -> Response:
        external_id, feature, quantity = _parse_check(read_json_body(request, max_bytes=16 * 1024))
        answer = selectors.check_entitlement(
            self.tenant, external_id=external_id, feature_key=feature, quantity=quantity
        )
        if answer.record_gate_hit:
            services.record_feature_gate_hit(
                self.tenant, account_id=answer.account_id, feature_key=feature, quantity=quantity, reason=answer.reason
            )
        return Response(answer.as_dict())
