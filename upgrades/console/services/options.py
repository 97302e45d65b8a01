"""One proposal option priced: catalog prices, the policy discount (or the CSM's, routed when beyond policy),
billing's own estimate of today's charge, the price path over the whole term and the expected impact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from accounts.errors import InvalidInput
from accounts.models import CustomerAccount, Tenant
from billing.models import License
from billing.selectors import current_discount_policy, latest_addon_prices, latest_tier_price
from catalog.models import AddOn, GovernanceState, Tier
from catalog.pricing import discount_for, discount_on_lines, total_for_seats
from upgrades.console.pricepath import price_path, term_end
from upgrades.offers.pricing import compute_roi, estimate_quote
from upgrades.offers.selectors import get_live_settings

MAX_TERM_YEARS = 5


@dataclass(frozen=True)
class OptionRequest:
    tier: str
    interval: str = "year"
    seats: int = 1
    term_years: int = 1
    addons: tuple[str, ...] = ()
    # A ramp: the discount of each year of the term (empty: one discount throughout, the policy's or the CSM's).
    year_percents: tuple[Decimal, ...] = ()


@dataclass(frozen=True)
class PricedOption:
    option: dict[str, Any]
    quote: dict[str, Any]
    path: list[dict[str, Any]]
    total: int
    roi: dict[str, Any]
    policy_percent: Decimal
    policy_explanation: str


def parse_percent(value: Any, *, field: str = "discount_percent") -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        percent = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise InvalidInput("Not a percentage.", details={field: ["A number from 0 to 100."]}) from None
    if not Decimal(0) <= percent <= Decimal(100):
        raise InvalidInput("Not a percentage.", details={field: ["A number from 0 to 100."]})
    return percent


def _tier(tenant: Tenant, key: str) -> Tier:
    tier = Tier.objects.for_tenant(tenant).filter(key=key, state=GovernanceState.PUBLISHED).order_by("-version").first()
    if tier is None:
        raise InvalidInput("No such tier.", details={"tier": [f"No published tier '{key}'."]})
    return tier


def validate_request(req: OptionRequest) -> None:
    errors: dict[str, list[str]] = {}
    if req.interval not in ("month", "year"):
        errors["interval"] = ["month or year."]
    if not 1 <= req.seats <= 1_000_000:
        errors["seats"] = ["A whole number of seats from 1."]
    if not 1 <= req.term_years <= MAX_TERM_YEARS:
        errors["term_years"] = [f"A whole number of years from 1 to {MAX_TERM_YEARS}."]
    elif req.term_years > 1 and req.interval != "year":
        errors["term_years"] = ["A term of several years is billed yearly: choose annual."]
    elif req.year_percents and (len(req.year_percents) != req.term_years or req.term_years < 2):
        errors["year_percents"] = [f"One discount for each of the {req.term_years} years of a term of several years."]
    elif any(not Decimal(0) <= p < Decimal(100) for p in req.year_percents):
        errors["year_percents"] = ["Each year's discount is from 0 to below 100 percent."]
    if errors:
        raise InvalidInput("The option is not valid.", details=errors)


def price_option(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    license: License,
    req: OptionRequest,
    discount_percent: Decimal | None,
    is_renewal: bool,
    evidence: dict[str, Any],
    now=None,
) -> PricedOption:
    validate_request(req)
    tier = _tier(tenant, req.tier)
    tier_price = latest_tier_price(tenant, tier=tier, interval=req.interval, currency=license.currency)
    if tier_price is None:
        raise InvalidInput("Not sold so.", details={"interval": [f"{tier.name} has no {req.interval}ly price."]})
    addons = list(AddOn.objects.for_tenant(tenant).filter(key__in=req.addons, state=GovernanceState.PUBLISHED))
    addon_prices = latest_addon_prices(tenant, addons=addons, interval=req.interval)
    if len(addon_prices) != len(set(req.addons)):
        raise InvalidInput("Unknown add-on.", details={"addons": ["Every add-on must be published at this interval."]})
    prices = [tier_price, *addon_prices]
    lines = [total_for_seats(amount=p.amount, seats=req.seats, per_seat=p.per_seat) for p in prices]
    list_amount = sum(lines)
    policy = current_discount_policy(tenant)
    policy_discount = discount_for(
        policy, term_years=req.term_years, seats=req.seats, list_amount=list_amount, is_renewal=is_renewal
    )
    by_year = [p.quantize(Decimal("0.01")) for p in req.year_percents]
    ramp = by_year if len(set(by_year)) > 1 else []  # the same percent every year is a flat discount
    chosen = policy_discount.percent if discount_percent is None else discount_percent  # the policy's or the CSM's
    percent = by_year[0] if by_year else chosen
    within = max(ramp or [percent]) <= policy_discount.percent
    if ramp:
        explanation = (
            ", ".join(f"{p.normalize():f} %" for p in ramp)
            + f" in years 1 to {len(ramp)}, agreed by the account team"
            + f" (policy: {policy_discount.percent.normalize():f} %)"
        )
    elif percent == policy_discount.percent:
        explanation = policy_discount.explanation
    else:
        explanation = (
            f"{percent.normalize():f} % agreed by the account team (policy: {policy_discount.percent.normalize():f} %)"
        )
    amount = list_amount - discount_on_lines(lines, percent)  # per line, as Stripe discounts the invoice
    key = (
        f"{tier.key}-{req.interval}"
        + (f"-{req.term_years}y" if req.term_years > 1 else "")
        + ("-" + "-".join(sorted(req.addons)) if req.addons else "")
        + ("-ramp-" + "-".join(f"{p.normalize():f}" for p in ramp) if ramp else "")
    )
    option: dict[str, Any] = {
        "key": key,
        "interval": req.interval,
        "term_years": req.term_years,
        "tier": tier.key,
        "tier_name": tier.name,
        "addons": sorted(req.addons),
        "seats": req.seats,
        "price_ids": [p.pk for p in prices],
        "list_amount": list_amount,
        "amount": amount,
        "monthly_equivalent": amount if req.interval == "month" else amount // 12,
        "currency": license.currency,
        "label": f"{tier.name}, {req.seats} seat(s), "
        + ("monthly" if req.interval == "month" else f"annual, {req.term_years}-year term"),
        "discount": {
            "percent": f"{percent:.2f}",
            "amount": list_amount - amount,
            "explanation": explanation,
            "within_policy": within,
            **({"year_percents": [f"{p:.2f}" for p in ramp]} if ramp else {}),
        }
        if percent or ramp
        else None,
    }
    quote = estimate_quote(license=license, option=option, now=now)
    first_at = _dt(quote["quoted_at"])
    renew_from = _dt(quote["next_renewal_at"])
    fresh = quote.get("kind") in ("new", "interval")
    ends = term_end(first_at=first_at, renew_from=renew_from, term_years=req.term_years, fresh_period=fresh)
    first_list = sum(
        line["amount"] for line in quote["lines"] if line["amount"] > 0 and "iscount" not in line["description"]
    )
    path = price_path(
        first_at=first_at,
        first_amount=quote["amount_due_now"],
        first_list_amount=max(first_list, quote["amount_due_now"]),
        renew_from=renew_from,
        interval=req.interval,
        renewal_lines=lines,
        year_percents=ramp or [percent],
        term_ends_at=ends,
        fresh_period=fresh,
    )
    settings_row = get_live_settings(tenant)
    roi: dict[str, Any] = {}
    if settings_row is not None and evidence:
        roi = compute_roi(tenant, account=account, settings=settings_row, evidence=evidence, option=option) or {}
    option["term_ends_at"] = ends.isoformat()
    return PricedOption(
        option=option,
        quote=quote,
        path=path.as_rows(),
        total=path.total,
        roi=roi,
        policy_percent=policy_discount.percent,
        policy_explanation=policy_discount.explanation,
    )


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)
