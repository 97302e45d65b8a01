"""/api/v1/plan-changes: a vendor's own UI quotes a plan change, confirms it, and follows it until it settles.

Thin: input is validated here (every field, 400 with field and reason), the quote and the
confirmation are the billing services' (`quote_plan_change`, `confirm_plan_change`), reads
go through selectors. Service errors (`TierwiseError`) render in the house shape with their
own status (`quote_stale`, `quote_expired`, `change_in_flight` -> 409; Stripe down -> 503).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.models import external_id_validator
from accounts.selectors import get_account_for_tenant
from billing import selectors
from billing.errors import InvalidInput, NotFound
from billing.models import License, PlanChange, PlanChangeState
from billing.services.plan_changes import confirm_plan_change, quote_plan_change
from catalog import selectors as catalog_selectors
from catalog.models import Price, key_validator

_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
_KEY = re.compile(key_validator.regex.pattern)
# The service names its fields after the models; the API after what the caller sent.
_SERVICE_FIELDS = {"target_price": "tier", "addon_prices": "addons"}


class PlanChangeInputSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=128, help_text="The account's external id.")
    tier = serializers.CharField(max_length=100, help_text="The key of a published tier.")
    interval = serializers.ChoiceField(choices=["month", "year"])
    seats = serializers.IntegerField(min_value=1, max_value=1_000_000)
    addons = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        max_length=50,
        help_text="Keys of published add-ons offered with the tier.",
    )

    def validate_account(self, value: str) -> str:
        if not _EXTERNAL_ID.fullmatch(value):
            raise serializers.ValidationError("Not a valid external id.")
        return value

    def validate_tier(self, value: str) -> str:
        if not _KEY.fullmatch(value):
            raise serializers.ValidationError("Not a valid tier key.")
        return value

    def validate_addons(self, value: list[str]) -> list[str]:
        bad = [key for key in value if not _KEY.fullmatch(key)]
        if bad:
            raise serializers.ValidationError(f"Not valid add-on keys: {', '.join(map(repr, bad))}.")
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each add-on at most once.")
        return value


class QuoteLineSerializer(serializers.Serializer):
    description = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units; credits are negative.")
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    proration = serializers.BooleanField()
    quantity = serializers.IntegerField(allow_null=True)


class QuoteSerializer(serializers.Serializer):
    lines = QuoteLineSerializer(many=True, help_text="Every line of Stripe's preview of the invoice.")
    amount_due_now = serializers.IntegerField(help_text="Minor units charged when the change is confirmed.")
    next_renewal_amount = serializers.IntegerField(help_text="Minor units billed at the next renewal.")
    next_renewal_at = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    expires_at = serializers.DateTimeField(help_text="Confirm before this; afterwards ask for a new quote.")


class PlanChangeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(help_text="The account's external id.")
    kind = serializers.CharField()
    state = serializers.ChoiceField(choices=PlanChangeState.choices)
    quote = QuoteSerializer()
    amount_charged = serializers.IntegerField(
        allow_null=True, help_text="Minor units on the settled invoice; null until settled."
    )
    settled_at = serializers.DateTimeField(allow_null=True)
    failure_code = serializers.CharField(allow_blank=True)
    failure_message = serializers.CharField(allow_blank=True)


def _line(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": raw.get("description", ""),
        "amount": raw.get("amount", 0),
        "currency": raw.get("currency", ""),
        "period_start": raw.get("period_start"),
        "period_end": raw.get("period_end"),
        "proration": bool(raw.get("proration", False)),
        "quantity": raw.get("quantity"),
    }


def _renewal_amount(plan_change: PlanChange) -> int:
    prices = [(plan_change.target_price, True), *((p, False) for p in plan_change.target_addon_prices.all())]
    return sum(p.amount * (plan_change.target_seats if p.per_seat else 1) for p, _ in prices)


def _next_renewal_at(plan_change: PlanChange) -> Any:
    if plan_change.effective_at is not None:
        return plan_change.effective_at
    ends = [line.get("period_end") for line in plan_change.quote_lines if line.get("period_end")]
    if ends:
        return max(ends)
    return plan_change.license.current_period_end


def present(plan_change: PlanChange) -> dict[str, Any]:
    settled = plan_change.state == PlanChangeState.SETTLED
    return {
        "id": plan_change.pk,
        "account": plan_change.account.external_id,
        "kind": plan_change.kind,
        "state": plan_change.state,
        "quote": {
            "lines": [_line(raw) for raw in plan_change.quote_lines],
            "amount_due_now": plan_change.quote_amount_due,
            "next_renewal_amount": _renewal_amount(plan_change),
            "next_renewal_at": _next_renewal_at(plan_change),
            "currency": plan_change.currency,
            "expires_at": plan_change.quote_expires_at,
        },
        "amount_charged": plan_change.charged_amount if settled else None,
        "settled_at": plan_change.settled_at,
        "failure_code": plan_change.failure_code,
        "failure_message": plan_change.failure_message,
    }


class PlanChangeViewSet(TenantScopedViewSet):
    """Plan changes: quote (POST), confirm, follow. Ids of other tenants answer 404."""

    lookup_value_regex = r"[0-9]{1,18}"
    serializer_class = PlanChangeOutputSerializer

    def tenant_queryset(self):
        return selectors.list_plan_changes(self.tenant)

    def _target(self, fields: dict[str, Any]) -> tuple[License, Price, list[Price]]:
        errors: dict[str, list[str]] = {}
        try:
            account = get_account_for_tenant(self.tenant, fields["account"])
        except NotFound:
            raise InvalidInput("Invalid plan change.", details={"account": ["No such account."]}) from None
        license = selectors.get_license_for_account(self.tenant, account)
        if license is None:
            raise InvalidInput("Invalid plan change.", details={"account": ["The account holds no licence."]})
        try:
            tier = catalog_selectors.get_published_tier(self.tenant, fields["tier"])
        except NotFound:
            raise InvalidInput("Invalid plan change.", details={"tier": ["No published tier with this key."]}) from None
        price = selectors.latest_tier_price(
            self.tenant, tier=tier, interval=fields["interval"], currency=license.currency
        )
        if price is None:
            errors["interval"] = [f"The tier has no published {fields['interval']}ly price in {license.currency}."]
        limit = catalog_selectors.tier_seat_limit(tier)
        if limit is not None and fields["seats"] > limit:
            errors["seats"] = [f"The tier allows at most {limit} seat(s)."]
        addon_prices: list[Price] = []
        if fields["addons"]:
            published = {a.key: a for a in catalog_selectors.list_published_addons(self.tenant).order_by("version")}
            unknown = [key for key in fields["addons"] if key not in published]
            if unknown:
                errors["addons"] = [f"No published add-on {key!r}." for key in unknown]
            else:
                addons = [published[key] for key in fields["addons"]]
                # catalog.selectors.addon_sold_with: naming no tiers, it is sold with every tier.
                offered = {a.key for a in catalog_selectors.compatible_addons(tier, addons)}
                refused = [a.key for a in addons if a.key not in offered]
                if refused:
                    errors["addons"] = [f"{key!r} is not offered with {tier.key!r}." for key in refused]
                else:
                    addon_prices = selectors.latest_addon_prices(
                        self.tenant, addons=addons, interval=fields["interval"]
                    )
                    if len(addon_prices) != len(addons):
                        errors["addons"] = [f"Not every add-on has a published {fields['interval']}ly price."]
        if errors:
            raise InvalidInput("Invalid plan change.", details=errors)
        assert price is not None
        return license, price, addon_prices

    @extend_schema(request=PlanChangeInputSerializer, responses={201: PlanChangeOutputSerializer})
    def create(self, request: Request) -> Response:
        data = PlanChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        license, price, addon_prices = self._target(fields)
        try:
            plan_change = quote_plan_change(
                self.tenant,
                license=license,
                target_price=price,
                seats=fields["seats"],
                addon_prices=addon_prices,
                requested_by=self.actor,
            )
        except InvalidInput as exc:
            if isinstance(exc.details, dict):
                exc.details = {_SERVICE_FIELDS.get(k, k): v for k, v in exc.details.items()}
            raise
        plan_change = selectors.get_plan_change_for_tenant(self.tenant, plan_change.pk)
        return Response(PlanChangeOutputSerializer(present(plan_change)).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=PlanChangeOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        plan_change = self.get_object()
        return Response(PlanChangeOutputSerializer(present(plan_change)).data)

    @extend_schema(request=None, responses={202: PlanChangeOutputSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        plan_change = self.get_object()
        plan_change = confirm_plan_change(self.tenant, plan_change=plan_change, actor=self.actor)
        plan_change = selectors.get_plan_change_for_tenant(self.tenant, plan_change.pk)
        return Response(PlanChangeOutputSerializer(present(plan_change)).data, status=status.HTTP_202_ACCEPTED)
