"""Pure price arithmetic: discounts from policy, savings, effective and per-seat prices.

No database, no floats. Money is integer minor units; percentages are `Decimal`s with
two places. Every rounding goes through `round_half_up`, once, at the end of a
computation, so the same inputs give the same answer on every machine and in every
app (offers, portal, billing quotes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

HUNDRED = Decimal(100)
BASIS = 10_000  # percentages are computed in hundredths of a percent: 12.50 % == 1250
ZERO_PERCENT = Decimal("0.00")
MONTHS_PER_YEAR = 12


def round_half_up(numerator: int, denominator: int = 1) -> int:
    """numerator / denominator rounded to the nearest integer, halves away from zero.

    The one rounding rule for money and percentages. Integer arithmetic only.
    """
    if denominator == 0:
        raise ZeroDivisionError("denominator must not be 0")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    if numerator < 0:
        return -round_half_up(-numerator, denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def percent_to_basis(percent: Decimal | int | str) -> int:
    """12.5 -> 1250. Percentages carry at most two decimal places; more are rounded half-up."""
    try:
        value = Decimal(str(percent))
    except InvalidOperation as exc:
        raise ValueError(f"{percent!r} is not a percentage") from exc
    if not value.is_finite():
        raise ValueError(f"{percent!r} is not a percentage")
    return int((value * HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def basis_to_percent(basis: int) -> Decimal:
    """1250 -> Decimal('12.50')."""
    return (Decimal(basis) / HUNDRED).quantize(Decimal("0.01"))


def percent_of(part: int, whole: int) -> Decimal:
    """part / whole as a percentage with two places (half-up); 0 when whole is 0."""
    if whole == 0:
        return ZERO_PERCENT
    return basis_to_percent(round_half_up(part * BASIS, whole))


def apply_percent(amount: int, percent: Decimal) -> int:
    """The share `percent` of `amount`, in minor units, rounded once."""
    return round_half_up(amount * percent_to_basis(percent), BASIS)


def discount_on_lines(amounts: Iterable[int], percent: Decimal) -> int:
    """What a percent discount takes off an invoice of these lines: each line's share rounded once, then
    added up. Stripe discounts every line of an invoice and rounds each (`discount_amounts`), so one
    rounding on the sum could differ from the charge by a minor unit per line."""
    return sum(apply_percent(amount, percent) for amount in amounts)


# --- Computed prices --------------------------------------------------------------------


@dataclass(frozen=True)
class Saving:
    """What the annual plan saves against paying monthly for twelve months."""

    amount: int  # minor units per year (per seat when the prices are per seat); negative = annual costs more
    percent: Decimal


def annual_saving(*, monthly_amount: int, annual_amount: int) -> Saving:
    """Saving of the annual price against 12 x the monthly price.

    Monthly 2,900 and annual 29,000: 12 x 2,900 = 34,800; saving 5,800 = 16.67 %.
    """
    twelve = monthly_amount * MONTHS_PER_YEAR
    saved = twelve - annual_amount
    return Saving(amount=saved, percent=percent_of(saved, twelve))


def effective_monthly(annual_amount: int) -> int:
    """The annual price spread over twelve months (29,000 -> 2,417)."""
    return round_half_up(annual_amount, MONTHS_PER_YEAR)


def price_per_seat(*, amount: int, seats: int, per_seat: bool) -> int:
    """What one seat costs: the amount itself for per-seat prices, else the flat amount shared out."""
    if seats < 1:
        raise ValueError("seats must be at least 1")
    return amount if per_seat else round_half_up(amount, seats)


def total_for_seats(*, amount: int, seats: int, per_seat: bool) -> int:
    """What the customer pays per interval for `seats` seats."""
    if seats < 1:
        raise ValueError("seats must be at least 1")
    return amount * seats if per_seat else amount


# --- Discount policy --------------------------------------------------------------------


class PolicyLike(Protocol):
    """The fields of `catalog.models.DiscountPolicy` that `discount_for` reads."""

    term_rules: Any
    volume_rules: Any
    combination: str
    cap_percent: Any
    loyalty_percent: Any


@dataclass(frozen=True)
class TermRule:
    years: int
    basis: int


@dataclass(frozen=True)
class VolumeRule:
    min_seats: int
    max_seats: int | None
    basis: int

    def matches(self, seats: int) -> bool:
        return seats >= self.min_seats and (self.max_seats is None or seats <= self.max_seats)


def parse_term_rules(rules: Iterable[Mapping[str, Any]] | None) -> list[TermRule]:
    """Term rules sorted by years. Raises ValueError with a human message on bad input."""
    parsed = []
    for i, rule in enumerate(rules or []):
        try:
            years = int(rule["years"])
            basis = percent_to_basis(rule["percent"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Term rule {i + 1}: needs whole 'years' and a 'percent'.") from exc
        if not 1 <= years <= 10:
            raise ValueError(f"Term rule {i + 1}: years must be between 1 and 10.")
        if not 0 <= basis <= BASIS:
            raise ValueError(f"Term rule {i + 1}: percent must be between 0 and 100.")
        parsed.append(TermRule(years=years, basis=basis))
    years_seen = [r.years for r in parsed]
    if len(set(years_seen)) != len(years_seen):
        raise ValueError("Term rules: each number of years may appear once.")
    return sorted(parsed, key=lambda r: r.years)


def parse_volume_rules(rules: Iterable[Mapping[str, Any]] | None) -> list[VolumeRule]:
    """Seat brackets sorted by their first seat; they may not overlap."""
    parsed = []
    for i, rule in enumerate(rules or []):
        try:
            low = int(rule["min_seats"])
            high = rule.get("max_seats")
            high = None if high in (None, "") else int(high)
            basis = percent_to_basis(rule["percent"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"Volume rule {i + 1}: needs whole 'min_seats', optional 'max_seats', and a 'percent'."
            ) from exc
        if low < 1 or (high is not None and high < low):
            raise ValueError(f"Volume rule {i + 1}: seats must run from at least 1 upwards.")
        if not 0 <= basis <= BASIS:
            raise ValueError(f"Volume rule {i + 1}: percent must be between 0 and 100.")
        parsed.append(VolumeRule(min_seats=low, max_seats=high, basis=basis))
    parsed.sort(key=lambda r: r.min_seats)
    for prev, nxt in zip(parsed, parsed[1:], strict=False):
        if prev.max_seats is None or prev.max_seats >= nxt.min_seats:
            raise ValueError(
                f"Volume rules: the brackets starting at {prev.min_seats} and {nxt.min_seats} seats overlap."
            )
    return parsed


@dataclass(frozen=True)
class Discount:
    """A policy discount: the percentage, the money it takes off `list_amount`, and why."""

    percent: Decimal
    amount: int  # minor units off list_amount; 0 when no list amount was given
    explanation: str
    term_percent: Decimal = ZERO_PERCENT
    volume_percent: Decimal = ZERO_PERCENT
    loyalty_percent: Decimal = ZERO_PERCENT
    capped: bool = False


def _fmt(basis: int) -> str:
    text = f"{basis_to_percent(basis).normalize():f}"
    return f"{text} %"


def _combine(parts: list[int], how: str) -> int:
    if how == "best":
        return max(parts, default=0)
    if how == "compound":
        # 1 - (1 - a)(1 - b)...: exact in integers, rounded once (half-up) at the end.
        remaining = 1
        for part in parts:
            remaining *= BASIS - part
        scale = BASIS ** max(len(parts) - 1, 0)
        return round_half_up(BASIS * scale - remaining, scale) if parts else 0
    return sum(parts)


def discount_for(
    policy: PolicyLike | None,
    *,
    term_years: int,
    seats: int,
    list_amount: int | None = None,
    is_renewal: bool = False,
) -> Discount:
    """The discount `policy` gives for a commitment of `term_years` and `seats` seats.

    Term: the rule with the most years not above `term_years` (a 4-year deal gets the
    3-year rule). Volume: the seat bracket containing `seats`. Loyalty: added at renewal
    of a multi-year commitment. The parts combine as the policy says (add, compound,
    best), then the cap applies. Pure and deterministic: same inputs, same Discount.
    """
    if term_years < 1:
        raise ValueError("term_years must be at least 1")
    if seats < 1:
        raise ValueError("seats must be at least 1")
    if list_amount is not None and list_amount < 0:
        raise ValueError("list_amount must not be negative")
    if policy is None:
        return Discount(percent=ZERO_PERCENT, amount=0, explanation="No discount policy applies.")

    term_rules = parse_term_rules(policy.term_rules)
    volume_rules = parse_volume_rules(policy.volume_rules)
    how = str(policy.combination or "add")
    cap = percent_to_basis(policy.cap_percent if policy.cap_percent is not None else 100)
    loyalty = percent_to_basis(policy.loyalty_percent or 0)

    reasons: list[str] = []
    term = next((r for r in reversed(term_rules) if r.years <= term_years), None)
    term_basis = term.basis if term else 0
    if term_basis:
        reasons.append(
            f"{_fmt(term_basis)} for a {term_years}-year commitment"
            + (f" (the {term.years}-year rule)" if term and term.years != term_years else "")
        )
    volume = next((r for r in volume_rules if r.matches(seats)), None)
    volume_basis = volume.basis if volume else 0
    if volume_basis and volume:
        bracket = f"{volume.min_seats}+" if volume.max_seats is None else f"{volume.min_seats}–{volume.max_seats}"
        reasons.append(f"{_fmt(volume_basis)} for {seats} seats ({bracket} seat bracket)")
    loyalty_basis = loyalty if is_renewal and term_years >= 2 else 0
    if loyalty_basis:
        reasons.append(f"{_fmt(loyalty_basis)} loyalty for renewing on a multi-year term")

    parts = [p for p in (term_basis, volume_basis, loyalty_basis) if p]
    combined = _combine(parts, how)
    if len(parts) > 1:
        verb = {"add": "added", "compound": "applied one after the other", "best": "the larger one taken"}.get(
            how, "added"
        )
        reasons.append(f"combined ({verb}): {_fmt(combined)}")
    capped = combined > cap
    total = min(combined, cap)
    if capped:
        reasons.append(f"capped at the policy maximum of {_fmt(cap)}")

    percent = basis_to_percent(total)
    amount = round_half_up(list_amount * total, BASIS) if list_amount is not None else 0
    if not reasons:
        explanation = f"No discount: the policy has no rule for {term_years} year(s) and {seats} seat(s)."
    else:
        explanation = "; ".join(reasons) + "."
        explanation = explanation[0].upper() + explanation[1:]
    return Discount(
        percent=percent,
        amount=amount,
        explanation=explanation,
        term_percent=basis_to_percent(term_basis),
        volume_percent=basis_to_percent(volume_basis),
        loyalty_percent=basis_to_percent(loyalty_basis),
        capped=capped,
    )


def describe_policy(policy: PolicyLike | None) -> str:
    """The policy in one customer-facing sentence, e.g. '2-year commitment: 10 % off. ... at most 25 %.'"""
    if policy is None:
        return ""
    parts = [f"{r.years}-year commitment: {_fmt(r.basis)} off." for r in parse_term_rules(policy.term_rules) if r.basis]
    for r in parse_volume_rules(policy.volume_rules):
        if r.basis:
            seats = f"{r.min_seats}+" if r.max_seats is None else f"{r.min_seats}–{r.max_seats}"
            parts.append(f"{seats} seats: {_fmt(r.basis)} off.")
    if not parts:
        return ""
    parts.append(f"Never more than {_fmt(percent_to_basis(policy.cap_percent))} in total.")
    return " ".join(parts)
