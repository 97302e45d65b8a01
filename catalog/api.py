"""GET /api/v1/catalog/tiers: the published pricing table for a vendor's own website (read scope)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedSchema, TenantScopedViewSet
from catalog import selectors
from catalog.errors import NotFound
from catalog.selectors import AddOnCard, FeatureRow, PricePair, TierCard


class PriceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Minor units (cents).")
    currency = serializers.CharField()
    per_seat = serializers.BooleanField()
    version = serializers.IntegerField()


class PricesSerializer(serializers.Serializer):
    monthly = PriceSerializer(allow_null=True)
    annual = PriceSerializer(allow_null=True)
    annual_effective_monthly = serializers.IntegerField(allow_null=True)
    annual_saving_amount = serializers.IntegerField(allow_null=True, help_text="12 x monthly - annual, minor units.")
    annual_saving_percent = serializers.CharField(allow_null=True, help_text="Two decimal places, e.g. '16.67'.")

    def to_representation(self, pair: PricePair) -> dict[str, Any]:
        def price(p):
            return (
                None
                if p is None
                else {
                    "id": p.pk,
                    "amount": p.amount,
                    "currency": p.currency,
                    "per_seat": p.per_seat,
                    "version": p.version,
                }
            )

        saving = pair.saving
        return {
            "monthly": price(pair.monthly),
            "annual": price(pair.annual),
            "annual_effective_monthly": pair.effective_monthly,
            "annual_saving_amount": saving.amount if saving else None,
            "annual_saving_percent": f"{saving.percent:f}" if saving else None,
        }


class EntitlementSerializer(serializers.Serializer):
    feature = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    unit = serializers.CharField()
    included = serializers.BooleanField()
    limit = serializers.IntegerField(allow_null=True, help_text="null = unlimited (when included).")
    enforcement = serializers.CharField(allow_null=True)

    def to_representation(self, row: FeatureRow) -> dict[str, Any]:
        e = row.entitlement
        return {
            "feature": row.feature.key,
            "name": row.feature.name,
            "kind": row.feature.kind,
            "unit": row.feature.unit,
            "included": row.included,
            "limit": row.limit,
            "enforcement": e.enforcement if row.included else None,
        }


class BundleSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField(source="tier.key")
    addons = serializers.SerializerMethodField()
    audience_kind = serializers.CharField()
    audience = serializers.CharField()
    description = serializers.CharField()
    scenarios = serializers.JSONField()

    def get_addons(self, bundle) -> list[str]:
        return [a.key for a in bundle.addons.all()]


class AddOnSerializer(serializers.Serializer):
    key = serializers.CharField(source="addon.key")
    version = serializers.IntegerField(source="addon.version")
    name = serializers.CharField(source="addon.name")
    description = serializers.CharField(source="addon.description")
    currency = serializers.CharField(source="addon.currency")
    prices = PricesSerializer()
    entitlements = EntitlementSerializer(source="features", many=True)
    compatible_tiers = serializers.ListField(source="tier_keys", child=serializers.CharField())


class TierSerializer(serializers.Serializer):
    key = serializers.CharField(source="tier.key")
    version = serializers.IntegerField(source="tier.version")
    name = serializers.CharField(source="tier.name")
    rank = serializers.IntegerField(source="tier.rank")
    tagline = serializers.CharField(source="tier.tagline")
    outcomes = serializers.ListField(source="tier.outcomes", child=serializers.CharField())
    who_for = serializers.CharField(source="tier.who_for")
    is_free = serializers.BooleanField(source="tier.is_free")
    is_anchor = serializers.BooleanField()
    trial_days = serializers.IntegerField(source="tier.default_trial_days")
    currency = serializers.CharField(source="tier.currency")
    product = serializers.CharField(source="tier.product.key")
    prices = PricesSerializer()
    entitlements = EntitlementSerializer(source="features", many=True)
    addons = serializers.SerializerMethodField()
    bundles = BundleSerializer(many=True)

    def get_addons(self, card: TierCard) -> list[str]:
        return [a.key for a in card.addons]


class PricingTableSerializer(serializers.Serializer):
    tiers = TierSerializer(many=True)
    addons = AddOnSerializer(many=True)
    bundles = BundleSerializer(many=True)


def _cards(tenant) -> tuple[list[TierCard], list[AddOnCard], list]:
    tiers, addons, bundles = [], [], []
    for table in selectors.build_pricing_tables(tenant):
        tiers.extend(table.tiers)
        addons.extend(table.addons)
        bundles.extend(table.bundles)
    return tiers, addons, bundles


class _PricingTableSchema(TenantScopedSchema):
    """`list` here answers one object (the pricing table), not an array of tiers."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False


class CatalogTierViewSet(TenantScopedViewSet):
    """Published public tiers, lowest rank first, with prices, savings, entitlements, add-ons and bundles.

    Drafts, items awaiting approval, retired versions and hidden tiers never appear.
    """

    pagination_class = None
    serializer_class = TierSerializer
    schema = _PricingTableSchema()
    lookup_field = "key"

    def tenant_queryset(self):
        return selectors.list_published_tiers(self.tenant)

    @extend_schema(responses=PricingTableSerializer, operation_id="catalog_tiers_list")
    def list(self, request: Request) -> Response:
        tiers, addons, bundles = _cards(self.tenant)
        return Response(PricingTableSerializer({"tiers": tiers, "addons": addons, "bundles": bundles}).data)

    @extend_schema(responses=TierSerializer)
    def retrieve(self, request: Request, key: str) -> Response:
        tiers, _, _ = _cards(self.tenant)
        card = next((c for c in tiers if c.tier.key == key), None)
        if card is None:
            raise NotFound(f"No published tier {key!r}.")
        return Response(TierSerializer(card).data)
