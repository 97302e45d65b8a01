"""Catalog rules that span more than one row, as plain functions returning human messages.

Used by services (which refuse on any issue), by admin forms (which show them beside
the field) and by the entitlement matrix (which highlights the cells). No writes here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from catalog.models import AddOn, Entitlement, Feature, FeatureKind, Interval, Tier
from catalog.pricing import annual_saving


@dataclass(frozen=True)
class PriceDraft:
    """What the checks need of a price, whether it is a saved row or a form being filled in."""

    interval: str
    amount: int
    currency: str
    per_seat: bool = True


def format_minor(amount: int, currency: str) -> str:
    """1234 USD -> '12.34 USD' without floats (messages only; templates use the money filter)."""
    from catalog.templatetags.catalog_money import money

    return money(amount, currency)


def price_issues(owner: Tier | AddOn, prices: Sequence[PriceDraft]) -> dict[str, list[str]]:
    """Problems with an owner's set of prices, keyed by the field they concern.

    Refused: a currency other than the owner's, two prices for one interval, and an
    annual price above 12 x the monthly one (the annual plan would punish commitment).
    """
    issues: dict[str, list[str]] = {}
    seen: dict[str, PriceDraft] = {}
    for price in prices:
        if price.currency != owner.currency:
            issues.setdefault("currency", []).append(
                f"The {price.interval}ly price is in {price.currency} but {owner.name} sells in {owner.currency}; "
                f"use {owner.currency} or change the {owner._meta.verbose_name}'s currency first."
            )
        if price.amount < 0:
            issues.setdefault("amount", []).append("A price cannot be negative.")
        if price.interval in seen:
            issues.setdefault("interval", []).append(
                f"{owner.name} already has a {dict(Interval.choices)[price.interval].lower()} price; "
                "change that one instead of adding another."
            )
        seen[price.interval] = price
    monthly, annual = seen.get(Interval.MONTH), seen.get(Interval.YEAR)
    if monthly and annual and monthly.per_seat == annual.per_seat and monthly.currency == annual.currency:
        saving = annual_saving(monthly_amount=monthly.amount, annual_amount=annual.amount)
        if saving.amount < 0:
            issues.setdefault("amount", []).append(
                f"The annual price {format_minor(annual.amount, annual.currency)} is above 12 x the monthly price "
                f"({format_minor(monthly.amount * 12, monthly.currency)}): customers who commit for a year "
                "would pay more. Lower the annual price."
            )
    if monthly and annual and monthly.per_seat != annual.per_seat:
        issues.setdefault("per_seat", []).append(
            "The monthly and annual prices must both be per seat or both flat, so the annual saving is honest."
        )
    return issues


def flatten(issues: Mapping[str, list[str]]) -> list[str]:
    return [message for messages in issues.values() for message in messages]


# --- The tier ladder -----------------------------------------------------------------------

UNLIMITED = float("inf")


def grant_level(entitlement: Entitlement | None) -> float:
    """Orders grants: nothing/off < a limit (by size) < unlimited."""
    if entitlement is None or not entitlement.enabled:
        return -1
    return UNLIMITED if entitlement.limit is None else entitlement.limit


def describe_grant(entitlement: Entitlement | None, feature: Feature) -> str:
    if entitlement is None or not entitlement.enabled:
        return "not included"
    if feature.kind == FeatureKind.BOOLEAN:
        return "included"
    if entitlement.limit is None:
        return "unlimited"
    unit = f" {feature.unit}" if feature.unit else ""
    return f"{entitlement.limit:,}{unit}"


@dataclass(frozen=True)
class LadderConflict:
    """A higher-ranked tier grants less of `feature` than a lower-ranked one."""

    higher: Tier
    lower: Tier
    feature: Feature
    higher_grant: str
    lower_grant: str

    @property
    def message(self) -> str:
        return (
            f"{self.higher.name} (rank {self.higher.rank}) grants less {self.feature.name} than "
            f"{self.lower.name} (rank {self.lower.rank}): {self.higher_grant} vs {self.lower_grant}. "
            "A higher tier must include at least what the tiers below it include."
        )


def ladder_conflicts(
    tiers: Iterable[Tier],
    *,
    entitlements: Mapping[int, Mapping[int, Entitlement]],
    features: Mapping[int, Feature],
    focus: Tier | None = None,
) -> list[LadderConflict]:
    """Every pair (higher, lower) of tiers of one product where the higher grants less.

    `entitlements` maps tier id -> feature id -> Entitlement. Versions of the same key
    are not compared with each other (v2 may well differ from v1). With `focus`, only
    pairs involving that tier are reported.
    """
    tiers = list(tiers)
    conflicts = []
    for higher in tiers:
        for lower in tiers:
            if higher.rank <= lower.rank or higher.key == lower.key or higher.product_id != lower.product_id:
                continue
            if focus is not None and focus.pk not in (higher.pk, lower.pk):
                continue
            high_grants = entitlements.get(higher.pk, {})
            low_grants = entitlements.get(lower.pk, {})
            for feature_id, feature in features.items():
                if feature.product_id != higher.product_id:
                    continue
                hi, lo = high_grants.get(feature_id), low_grants.get(feature_id)
                if grant_level(hi) < grant_level(lo):
                    conflicts.append(
                        LadderConflict(higher, lower, feature, describe_grant(hi, feature), describe_grant(lo, feature))
                    )
    return conflicts
