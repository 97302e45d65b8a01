"""Pricing one recommendation into an offer: the options, the anchor, the discount, the quote and the ROI.

`price_offer` reads the catalog (two queries for the other interval's prices), the tenant's discount
policy (one), and prices every option with catalog/pricing.py; the quote is `estimate_quote` of the
recommended option (the licence's own interval, one year), and the ROI `compute_roi` of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.models import Tenant
from billing.models import License
from billing.selectors import current_discount_policy, latest_addon_prices
from catalog.models import Price
from upgrades.offers.pricing.options import candidate_options, find_variant, multi_year_terms, price_sets
from upgrades.offers.pricing.quotes import estimate_quote
from upgrades.offers.pricing.roi import compute_roi
from upgrades.offers.pricing.types import RecommendationLike


class PricingBatch:
    """Reads shared by the offers of one batch (build_offers_for_signals): the discount policy once, and
    each distinct set of candidates' prices on the other interval once. Prices are immutable and the
    batch runs in one transaction, so every offer is priced exactly as `price_offer` alone would."""

    _UNSET: Any = object()

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._policy: Any = self._UNSET
        self._sets: dict[tuple, list] = {}
        self._prices: dict[int, Price] = {}
        self._addons: dict[tuple, list[Price]] = {}

    def policy(self) -> Any:
        if self._policy is self._UNSET:
            self._policy = current_discount_policy(self.tenant)
        return self._policy

    def price_sets(self, candidates: list, *, currency: str) -> list:
        key = (currency, *(
            (c.tier.pk, c.tier_price.pk, tuple(a.pk for a in c.addons), tuple(p.pk for p in c.addon_prices))
            for c in candidates
        ))  # fmt: skip
        if key not in self._sets:
            self._sets[key] = price_sets(self.tenant, candidates, currency=currency)
            for sets in self._sets[key]:
                for tier_price, addon_prices in sets.values():
                    for price in (tier_price, *addon_prices):
                        self._prices[price.pk] = price
        return self._sets[key]

    def option_prices(self, option: dict[str, Any]) -> tuple[Price, list[Price]] | None:
        """The option's prices from the ones already read, or None (the quote reads them itself)."""
        ids = [int(i) for i in option.get("price_ids") or []]
        found = [self._prices.get(i) for i in ids]
        if not ids or any(p is None or not _owner_loaded(p) for p in found):
            return None
        return found[0], found[1:]  # type: ignore[return-value]

    def current_addons(self, license: License) -> list[Price]:
        """What the licence's add-ons cost now on its interval (billing.selectors.license_addon_prices),
        from the licence's prefetched add-ons, read once per distinct set of add-ons."""
        if license.pk is None:  # an account on the default free tier holds no licence row, so no add-ons
            return []
        addons = sorted(license.addons.all(), key=lambda a: a.pk)
        key = (license.interval, tuple(a.pk for a in addons))
        if key not in self._addons:
            self._addons[key] = latest_addon_prices(self.tenant, addons=addons, interval=license.interval)
        return self._addons[key]


def _owner_loaded(price: Price) -> bool:
    field = "tier" if price.tier_id else "addon"
    return Price._meta.get_field(field).is_cached(price)


@dataclass(frozen=True)
class OfferPricing:
    options: list[dict[str, Any]]
    recommended_option: str
    anchor: dict[str, Any] | None
    discount: dict[str, Any] | None  # {"percent", "amount", "explanation", "within_policy", "variant", ...}
    discount_approval_needed: bool
    quote: dict[str, Any]
    currency: str
    roi: dict[str, Any] | None


def price_offer(
    tenant: Tenant,
    *,
    license: License,
    recommendation: RecommendationLike,
    settings: Any,
    variant: str = "",
    now: datetime | None = None,
    discount_approved: bool = False,
    shared: PricingBatch | None = None,
) -> OfferPricing:
    """Price `recommendation` for `license` (see the package docstring for the option shape).

    `variant` picks one of `settings.discount_variants` (an unknown key gives none). A variant that
    would take the discount above the policy cap is applied only up to the cap and the offer waits
    for an approval (`discount_approval_needed`); `discount_approved=True` (a recorded approval)
    prices it in full.
    """
    policy = shared.policy() if shared is not None else current_discount_policy(tenant)
    found_variant = find_variant(getattr(settings, "discount_variants", None), variant)
    candidate, anchor_candidate = recommendation.candidate, recommendation.anchor
    candidates = [candidate] + ([anchor_candidate] if anchor_candidate is not None else [])
    if shared is not None:
        sets = shared.price_sets(candidates, currency=license.currency)
    else:
        sets = price_sets(tenant, candidates, currency=license.currency)
    common = {"seats": license.seats, "policy": policy, "currency": license.currency, "current_monthly": license.mrr}
    options = candidate_options(
        candidate,
        prices=sets[0],
        variant=found_variant,
        approved=discount_approved,
        terms=multi_year_terms(policy),
        **common,
    )
    if not options:
        raise ValueError(f"The candidate {candidate.key!r} has no price on any interval.")
    recommended = next((o for o in options if o["interval"] == license.interval and o["term_years"] == 1), options[0])
    recommended["recommended"] = True
    anchor = None
    if anchor_candidate is not None:
        anchor_options = candidate_options(anchor_candidate, prices=sets[1], variant=None, approved=False, **common)
        anchor = next(
            (o for o in anchor_options if o["interval"] == recommended["interval"]),
            anchor_options[0] if anchor_options else None,
        )
        if anchor is not None:
            anchor["anchor"] = True
    waiting = [
        o for o in options if o.get("discount") and not o["discount"]["within_policy"] and not o["discount"]["approved"]
    ]
    # The offer's discount is the recommended option's; while one waits for approval, the one that waits
    # (the recommended option's first), so whoever approves sees what is asked.
    shown = recommended if recommended in waiting or not waiting else waiting[0]
    discount = {**shown["discount"], "option": shown["key"]} if shown.get("discount") else None
    if shared is not None:
        quote = estimate_quote(license=license, option=recommended, now=now, prices=shared.option_prices(recommended),
                               current_addons=shared.current_addons(license))  # fmt: skip
    else:
        free = license.pk is None  # the default free tier: no licence row, no add-ons
        quote = estimate_quote(license=license, option=recommended, now=now, current_addons=[] if free else None)
    roi = None
    if getattr(settings, "value_model", None):
        roi = compute_roi(
            tenant,
            account=license.account,
            settings=settings,
            evidence=recommendation.evidence,
            option=recommended,
        )
    return OfferPricing(
        options=options,
        recommended_option=recommended["key"],
        anchor=anchor,
        discount=discount,
        discount_approval_needed=bool(waiting),
        quote=quote,
        currency=license.currency,
        roi=roi,
    )
