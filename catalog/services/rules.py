"""Readiness rules: what stops a tier, add-on, bundle or policy from being submitted, approved or published."""

from __future__ import annotations

from accounts.models import Tenant
from catalog import pricing
from catalog.errors import CatalogErrorCode, InvalidInput
from catalog.models import (
    AddOn,
    Bundle,
    DiscountPolicy,
    Feature,
    GovernanceState,
    Governed,
    Tier,
)
from catalog.services._base import (
    _first_message,
    _label,
)
from catalog.validation import PriceDraft, flatten, ladder_conflicts, price_issues

# --- Per-model rules -------------------------------------------------------------------------


def _check_draft_rules(tenant: Tenant, obj: Governed) -> None:
    """Rules that must hold for any saved draft (submit adds completeness checks)."""
    if isinstance(obj, Tier | AddOn) and obj.pk is not None:
        prices = [PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in obj.prices.all()]
        issues = price_issues(obj, prices)
        if "currency" in issues:
            raise InvalidInput(
                issues["currency"][0], code=CatalogErrorCode.CURRENCY_MISMATCH, details={"currency": issues["currency"]}
            )
    if isinstance(obj, Tier) and obj.product_id and obj.product.tenant_id != tenant.pk:
        raise InvalidInput("Invalid input.", details={"product": ["Pick a product of this workspace."]})
    if isinstance(obj, DiscountPolicy):
        details = {}
        for name, parse in (("term_rules", pricing.parse_term_rules), ("volume_rules", pricing.parse_volume_rules)):
            try:
                parse(getattr(obj, name))
            except ValueError as exc:
                details[name] = [str(exc)]
        if details:
            raise InvalidInput(_first_message(details), code=CatalogErrorCode.BAD_RULES, details=details)


def _bundle_issues(bundle: Bundle, *, for_publish: bool) -> list[str]:
    issues = []
    tier = bundle.tier
    for addon in bundle.addons.all():
        compatible_keys = {t.key for t in addon.compatible_tiers.all()}
        if compatible_keys and tier.key not in compatible_keys:
            issues.append(f"The add-on {addon.name} is not offered with the {tier.name} tier.")
        if for_publish and addon.state != GovernanceState.PUBLISHED:
            issues.append(f"The add-on {addon.name} v{addon.version} is not published.")
    if for_publish and tier.state != GovernanceState.PUBLISHED:
        issues.append(f"The tier {tier.name} v{tier.version} is not published; publish it first.")
    if not bundle.scenarios:
        issues.append("Add at least one scenario: a team like the customer's and what changes for them.")
    for i, scenario in enumerate(bundle.scenarios or []):
        if not isinstance(scenario, dict) or not scenario.get("title") or not scenario.get("story"):
            issues.append(f"Scenario {i + 1} needs a title and a story.")
    return issues


def current_tier_ladder(tenant: Tenant, *, product_id: int, exclude_key: str) -> list[Tier]:
    """Published tiers of one product except versions of `exclude_key`, with entitlements loaded."""
    return list(
        Tier.objects.for_tenant(tenant)
        .filter(product_id=product_id, state=GovernanceState.PUBLISHED)
        .exclude(key=exclude_key)
        .prefetch_related("entitlements")
    )


def tier_issues(tenant: Tenant, tier: Tier) -> list[tuple[str, str]]:
    """(code, message) for everything that stops `tier` being submitted, approved or published."""
    issues: list[tuple[str, str]] = []
    prices = list(tier.prices.all())
    if not prices and not tier.is_free:
        issues.append((CatalogErrorCode.MISSING_PRICE, f"{tier.name} has no price. Add a monthly or annual price."))
    if tier.is_free and any(p.amount for p in prices):
        issues.append((CatalogErrorCode.INVALID, f"{tier.name} is the free tier, so its prices must be 0."))
    found = price_issues(tier, [PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in prices])
    for name, messages in found.items():
        code = {"currency": CatalogErrorCode.CURRENCY_MISMATCH, "interval": CatalogErrorCode.DUPLICATE_PRICE}.get(
            name, CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
        )
        issues.extend((code, m) for m in messages)
    others = current_tier_ladder(tenant, product_id=tier.product_id, exclude_key=tier.key)
    for other in others:
        if other.rank == tier.rank:
            issues.append(
                (
                    CatalogErrorCode.RANK_TAKEN,
                    f"Rank {tier.rank} is already {other.name}'s; give {tier.name} its own rank.",
                )
            )
        if tier.is_free and other.is_free:
            issues.append(
                (CatalogErrorCode.INVALID, f"{other.name} is already the free default tier; only one tier can be.")
            )
    features = {f.pk: f for f in Feature.objects.for_tenant(tenant).filter(product_id=tier.product_id)}
    grants = {t.pk: {e.feature_id: e for e in t.entitlements.all()} for t in [*others, tier]}
    for conflict in ladder_conflicts([*others, tier], entitlements=grants, features=features, focus=tier):
        issues.append((CatalogErrorCode.LADDER, conflict.message))
    return issues


def addon_issues(addon: AddOn) -> list[tuple[str, str]]:
    issues: list[tuple[str, str]] = []
    prices = list(addon.prices.all())
    if not prices:
        issues.append((CatalogErrorCode.MISSING_PRICE, f"{addon.name} has no price."))
    for name, messages in price_issues(
        addon, [PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in prices]
    ).items():
        code = {"currency": CatalogErrorCode.CURRENCY_MISMATCH, "interval": CatalogErrorCode.DUPLICATE_PRICE}.get(
            name, CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
        )
        issues.extend((code, m) for m in messages)
    if not addon.entitlements.exists():
        issues.append((CatalogErrorCode.INVALID, f"{addon.name} grants nothing yet; add an entitlement."))
    return issues


def readiness_issues(tenant: Tenant, obj: Governed, *, for_publish: bool = False) -> list[tuple[str, str]]:
    """Everything that stops `obj` moving on, as (code, message); empty when it is ready."""
    if isinstance(obj, Tier):
        return tier_issues(tenant, obj)
    if isinstance(obj, AddOn):
        return addon_issues(obj)
    if isinstance(obj, Bundle):
        return [
            (CatalogErrorCode.NOT_PUBLISHED if "published" in m else CatalogErrorCode.INCOMPATIBLE, m)
            for m in _bundle_issues(obj, for_publish=for_publish)
        ]
    if isinstance(obj, DiscountPolicy):
        try:
            _check_draft_rules(tenant, obj)
        except InvalidInput as exc:
            return [(CatalogErrorCode.BAD_RULES, m) for m in flatten(exc.details or {})]
    return []


def _refuse_on_issues(tenant: Tenant, obj: Governed, *, doing: str, for_publish: bool = False) -> None:
    issues = readiness_issues(tenant, obj, for_publish=for_publish)
    if issues:
        code, first = issues[0]
        raise InvalidInput(
            f"Cannot {doing} {_label(obj)}: {first}" + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""),
            code=code,
            details={"issues": [m for _, m in issues]},
        )
