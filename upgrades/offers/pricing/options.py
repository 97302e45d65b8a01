"""The options of an offer: monthly, annual and (where policy allows) multi-year, with savings and discounts.

Invariants:
- Every amount is integer minor units, computed by catalog/pricing.py (`total_for_seats`,
  `annual_saving`, `effective_monthly`, `discount_for`, `discount_on_lines`): one rounding place; a
  discount is rounded per line, as Stripe takes it off each invoice line.
- Discounts come only from the tenant's DiscountPolicy (`discount_for`, with its explanation). An
  OfferSettings discount variant adds to it only up to the policy cap; what it asks beyond the cap
  is never applied without a recorded approval (`within_policy` False, the offer waits).
- Multi-year terms are offered only for the term rules the policy has (2 years or more).
- Seats are the licence's seats; add-ons are priced at the option's interval (their newest
  published version, as billing prices them: `billing.selectors.latest_addon_prices`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accounts.models import Tenant
from billing.selectors import latest_addon_prices
from catalog.models import DiscountPolicy, GovernanceState, Price
from catalog.pricing import (
    BASIS,
    annual_saving,
    basis_to_percent,
    discount_for,
    discount_on_lines,
    effective_monthly,
    parse_term_rules,
    percent_to_basis,
    total_for_seats,
)
from upgrades.offers.pricing.types import CandidateLike, candidate_label

INTERVALS = ("month", "year")
PriceSet = tuple[Price, tuple[Price, ...]]  # (tier price, add-on prices) on one interval


@dataclass(frozen=True)
class Variant:
    """An OfferSettings discount variant: {"key", "percent", "explanation"}."""

    key: str
    basis: int  # hundredths of a percent
    explanation: str


def find_variant(discount_variants: Any, key: str) -> Variant | None:
    """The variant named `key` in the settings (none for "" or a key the settings do not have).

    An unknown key (an experiment arm that is not a discount variant) gives no discount: a
    discount is never invented from a name.
    """
    if not key:
        return None
    for raw in discount_variants or []:
        if isinstance(raw, dict) and raw.get("key") == key:
            basis = percent_to_basis(raw.get("percent") or 0)
            if not 0 <= basis <= BASIS:
                raise ValueError(f"Discount variant {key!r}: percent must be between 0 and 100.")
            return Variant(key=key, basis=basis, explanation=str(raw.get("explanation") or "").strip())
    return None


def _pct(basis: int) -> str:
    return str(basis_to_percent(basis))


def _pct_words(basis: int) -> str:
    return f"{basis_to_percent(basis).normalize():f} %"


def offer_discount(
    policy: DiscountPolicy | None,
    *,
    term_years: int,
    seats: int,
    line_amounts: Sequence[int],
    variant: Variant | None = None,
    approved: bool = False,
) -> dict[str, Any] | None:
    """The discount on one option (its lines' amounts): the policy's own (term, volume), plus the variant up
    to the cap. The amount is taken off line by line, as Stripe discounts the invoice (`discount_on_lines`).

    Returns None when nothing is taken off and nothing is asked. `percent` and `amount` are what is
    applied; `requested_percent` what policy plus variant ask; `within_policy` False when that is
    above the cap (the offer then waits for an approval; only `approved=True`, i.e. a recorded
    approval, applies the part above the cap).
    """
    found = discount_for(policy, term_years=term_years, seats=seats, list_amount=sum(line_amounts))
    policy_basis = percent_to_basis(found.percent)
    cap_basis = percent_to_basis(policy.cap_percent) if policy is not None else 0
    variant_basis = variant.basis if variant is not None else 0
    requested = min(policy_basis + variant_basis, BASIS)
    if requested == 0:  # nothing taken off and nothing asked (a 0 % variant such as "none" included)
        return None
    within = requested <= cap_basis
    applied = requested if within or approved else cap_basis
    reasons: list[str] = []
    if policy_basis:
        reasons.append(found.explanation.rstrip("."))
    if variant is not None and variant_basis:
        reasons.append(f"{variant.explanation or 'Offer discount'}: {_pct_words(variant_basis)}")
    if not within:
        if approved:
            reasons.append(
                f"{_pct_words(requested)} in total, above the policy maximum of {_pct_words(cap_basis)}, approved"
            )
        else:
            reasons.append(
                f"{_pct_words(requested)} in total would be above the policy maximum of {_pct_words(cap_basis)}: "
                f"{_pct_words(applied)} applies unless the rest is approved"
            )
    explanation = "; ".join(reasons) + "." if reasons else "No discount."
    return {
        "percent": _pct(applied),
        "amount": discount_on_lines(line_amounts, basis_to_percent(applied)),
        "explanation": explanation,
        "within_policy": within,
        "variant": variant.key if variant is not None else "",
        "policy_percent": _pct(policy_basis),
        "requested_percent": _pct(requested),
        "cap_percent": _pct(cap_basis),
        "approved": bool(approved and not within),
    }


def multi_year_terms(policy: DiscountPolicy | None) -> list[int]:
    """The multi-year terms the policy has a rule for (2 years or more), shortest first."""
    if policy is None:
        return []
    return [rule.years for rule in parse_term_rules(policy.term_rules) if rule.years >= 2]


# --- prices on each interval --------------------------------------------------------------------


def price_sets(tenant: Tenant, candidates: Sequence[CandidateLike], *, currency: str) -> list[dict[str, PriceSet]]:
    """For each candidate, its prices on each interval it can be bought on (two queries in all).

    The candidate's own prices (the engine's choice, on the licence's interval) are kept; the other
    interval takes the tier's newest published price in the licence's currency and each add-on's
    newest published price. An interval on which the tier or an add-on has no price is left out.
    """
    own = [c.tier_price.interval for c in candidates]
    others = {i for i in INTERVALS if any(i != o for o in own)}
    tier_latest: dict[tuple[int, str], Price] = {}
    if others:
        for price in (
            Price.objects.for_tenant(tenant)
            .select_related("tier")
            .filter(
                tier_id__in={c.tier.pk for c in candidates},
                interval__in=others,
                currency=currency,
                state=GovernanceState.PUBLISHED,
            )
            .order_by("tier_id", "interval", "-version", "-id")
        ):
            tier_latest.setdefault((price.tier_id, price.interval), price)
    addon_latest: dict[tuple[int, str], Price] = {}
    for interval in sorted(others):
        wanted = {a.pk: a for c in candidates if c.tier_price.interval != interval for a in c.addons}
        for price in latest_addon_prices(tenant, addons=wanted.values(), interval=interval):
            if price.currency == currency:
                addon_latest[(price.addon_id, interval)] = price
    out: list[dict[str, PriceSet]] = []
    for candidate in candidates:
        sets: dict[str, PriceSet] = {
            candidate.tier_price.interval: (candidate.tier_price, tuple(candidate.addon_prices))
        }
        for interval in INTERVALS:
            if interval in sets:
                continue
            tier_price = tier_latest.get((candidate.tier.pk, interval))
            addon_prices = [addon_latest.get((a.pk, interval)) for a in candidate.addons]
            if tier_price is not None and all(p is not None for p in addon_prices):
                sets[interval] = (tier_price, tuple(p for p in addon_prices if p is not None))
        out.append(sets)
    return out


# --- one option ---------------------------------------------------------------------------------


def price_lines(prices: PriceSet, *, seats: int) -> list[dict[str, Any]]:
    tier_price, addon_prices = prices
    lines = []
    for kind, price in (("tier", tier_price), *(("addon", p) for p in addon_prices)):
        owner = price.tier if kind == "tier" else price.addon
        quantity = seats if price.per_seat else 1
        lines.append(
            {
                "price_id": price.pk,
                "kind": kind,
                "key": owner.key if owner is not None else "",
                "name": owner.name if owner is not None else "",
                "unit_amount": price.amount,
                "per_seat": price.per_seat,
                "quantity": quantity,
                "amount": total_for_seats(amount=price.amount, seats=seats, per_seat=price.per_seat),
            }
        )
    return lines


def option_key(candidate: CandidateLike, *, interval: str, term_years: int) -> str:
    key = f"{candidate.key}-{interval}"
    return f"{key}-{term_years}y" if term_years > 1 else key


def build_option(
    candidate: CandidateLike,
    *,
    interval: str,
    term_years: int,
    prices: PriceSet,
    seats: int,
    policy: DiscountPolicy | None,
    variant: Variant | None,
    approved: bool,
    currency: str,
    current_monthly: int,
    monthly_amount: int | None,
    anchor: bool = False,
) -> dict[str, Any]:
    """One option (the offer's option dict, see the package docstring).

    `monthly_amount` is what the monthly option of the same candidate charges (after its
    discount): the saving of a yearly option is measured against twelve of it.
    """
    lines = price_lines(prices, seats=seats)
    list_amount = sum(line["amount"] for line in lines)
    discount = offer_discount(
        policy,
        term_years=term_years,
        seats=seats,
        line_amounts=[line["amount"] for line in lines],
        variant=variant,
        approved=approved,
    )
    amount = list_amount - (discount["amount"] if discount else 0)
    monthly_equivalent = amount if interval == "month" else effective_monthly(amount)
    saving = None
    if interval == "year" and monthly_amount:
        found = annual_saving(monthly_amount=monthly_amount, annual_amount=amount)
        if found.amount > 0:
            saving = {"amount": found.amount, "percent": str(found.percent), "versus": "monthly"}
    return {
        "key": option_key(candidate, interval=interval, term_years=term_years),
        "candidate": candidate.kind,
        "candidate_key": candidate.key,
        "label": candidate_label(candidate),
        "interval": interval,
        "term_years": term_years,
        "tier": candidate.tier.key,
        "tier_name": candidate.tier.name,
        "addons": [a.key for a in candidate.addons],
        "seats": seats,
        "price_ids": [line["price_id"] for line in lines],
        "lines": lines,
        "currency": currency,
        "list_amount": list_amount,
        "amount": amount,
        "monthly_equivalent": monthly_equivalent,
        "monthly_change": monthly_equivalent - current_monthly,
        "saving": saving,
        "discount": discount,
        "changes": candidate.changes,
        "anchor": anchor,
    }


def candidate_options(
    candidate: CandidateLike,
    *,
    prices: dict[str, PriceSet],
    seats: int,
    policy: DiscountPolicy | None,
    variant: Variant | None,
    approved: bool,
    currency: str,
    current_monthly: int,
    terms: Iterable[int] = (),
) -> list[dict[str, Any]]:
    """Monthly, annual, then each multi-year term (yearly billing) the policy allows, in that order."""
    common: dict[str, Any] = {
        "seats": seats,
        "policy": policy,
        "variant": variant,
        "approved": approved,
        "currency": currency,
        "current_monthly": current_monthly,
    }
    options: list[dict[str, Any]] = []
    monthly_amount = None
    if "month" in prices:
        monthly = build_option(
            candidate, interval="month", term_years=1, prices=prices["month"], monthly_amount=None, **common
        )
        monthly_amount = monthly["amount"]
        options.append(monthly)
    if "year" in prices:
        for years in (1, *terms):
            options.append(
                build_option(
                    candidate,
                    interval="year",
                    term_years=years,
                    prices=prices["year"],
                    monthly_amount=monthly_amount,
                    **common,
                )
            )
    return options


def percent_of_option(option: dict[str, Any]) -> Decimal:
    """The discount percent applied to an option (0 when none)."""
    discount = option.get("discount") or {}
    return Decimal(str(discount.get("percent") or "0"))
