"""An offer's discount and term on a plan change: checked, sent to Stripe as a coupon, put back if abandoned.

The discount is a `forever` percent-off coupon on the subscription (one id per tenant, percent and term,
created once), so Stripe's preview, the change's invoice and every later invoice carry it, line by line,
exactly as billing's estimate and the licence's MRR count it. It lasts as long as the licence's term:
a committed multi-year term is renewed by `licenses.renewal.renew_license_term`, which replaces the
subscription's coupon by the renewal's loyalty discount (or none); a one-year term keeps its discount
at each annual renewal, which is the renewal amount the offer showed.

Stripe applies a `pending_if_incomplete` update only once its invoice is paid and takes no `discounts`
with it, so the coupon is put on the subscription just before the update (its proration invoice is drawn
up with it). A change that is cancelled or abandoned before it was paid gives the subscription its
earlier discount back (the licence's renewal discount, or none).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from accounts.models import Tenant
from billing.models import License, PlanChange, PlanChangeKind
from billing.selectors import current_discount_policy
from billing.stripe_client import StripeGateway
from catalog.models import Price
from catalog.pricing import parse_term_rules

MAX_TERM_YEARS = 10


def clean_discount_term(
    tenant: Tenant, *, target: Price, discount_percent: Decimal | None, term_years: int | None
) -> tuple[Decimal | None, int | None, dict[str, list[str]]]:
    """The discount (two decimals; 0 is none) and term as stored, and what is wrong with them by field."""
    errors: dict[str, list[str]] = {}
    percent: Decimal | None = None
    if discount_percent is not None:
        try:
            percent = Decimal(str(discount_percent)).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            errors["discount_percent"] = ["A number of percent, e.g. 12.5."]
        else:
            if not Decimal(0) <= percent < Decimal(100):
                errors["discount_percent"] = ["At least 0 and below 100 percent."]
                percent = None
            elif percent == 0:
                percent = None
    if term_years is not None:
        if isinstance(term_years, bool) or not isinstance(term_years, int) or not 1 <= term_years <= MAX_TERM_YEARS:
            errors["term_years"] = [f"A whole number of years from 1 to {MAX_TERM_YEARS}."]
        elif term_years > 1 and target.interval != "year":
            errors["term_years"] = ["A term of several years is billed yearly: choose an annual price."]
        elif term_years > 1:
            policy = current_discount_policy(tenant)
            allowed = [r.years for r in parse_term_rules(policy.term_rules)] if policy is not None else []
            if term_years not in allowed:
                errors["term_years"] = [
                    f"The discount policy offers no {term_years}-year term"
                    + (f" (it offers {', '.join(str(y) for y in allowed)})." if allowed else ".")
                ]
    return percent, term_years, errors


def clean_year_percents(
    year_percents: list[str] | list[Decimal] | None, *, percent: Decimal | None, term_years: int | None
) -> tuple[list[str], dict[str, list[str]]]:
    """A ramp's discounts, one per year of the term, as stored ("10.00"); [] when none (or all equal the change's
    discount, which one coupon bills). The first year's is the change's own `discount_percent`."""
    if not year_percents:
        return [], {}
    problem = {"year_percents": ["One discount from 0 to below 100 percent for each year of the term."]}
    try:
        values = [Decimal(str(p)).quantize(Decimal("0.01")) for p in year_percents]
    except (InvalidOperation, ValueError):
        return [], problem
    if not term_years or term_years < 2 or len(values) != term_years or any(not 0 <= v < 100 for v in values):
        return [], problem
    if values[0] != (percent or Decimal(0)):
        return [], {"year_percents": ["The first year's discount is the change's discount_percent."]}
    if len(set(values)) == 1:
        return [], {}
    return [f"{v:.2f}" for v in values], {}


def coupon_id_for(tenant: Tenant, *, percent: Decimal, term_years: int | None) -> str:
    """Deterministic: the same tenant, percent and term always name the same Stripe coupon."""
    basis = int((percent * 100).to_integral_value())
    return f"tw-offer-{tenant.pk}-{basis}-{term_years or 1}y"


def ensure_coupon(
    tenant: Tenant, gateway: StripeGateway, *, percent: Decimal, term_years: int | None, currency: str
) -> str:
    """The change's coupon in Stripe (created once, then reused). Raises the gateway's errors."""
    return gateway.ensure_percent_coupon(
        percent,
        currency=currency,
        coupon_id=coupon_id_for(tenant, percent=percent, term_years=term_years),
        name=f"{percent.normalize():f}% off" + (f", {term_years}-year term" if term_years and term_years > 1 else ""),
        purpose="offer-discount",
    )


def plan_change_coupon(tenant: Tenant, gateway: StripeGateway, plan_change: PlanChange) -> str | None:
    """The coupon this change puts on the subscription, or None when it carries no discount of its own."""
    if not plan_change.discount_percent:
        return None
    return ensure_coupon(
        tenant,
        gateway,
        percent=Decimal(plan_change.discount_percent),
        term_years=plan_change.term_years,
        currency=plan_change.currency,
    )


def put_discount_on_subscription(tenant: Tenant, gateway: StripeGateway, plan_change: PlanChange) -> None:
    """Before the items update: the subscription carries the change's coupon (same key, same body on a retry)."""
    coupon_id = plan_change_coupon(tenant, gateway, plan_change)
    if coupon_id is None or not plan_change.license.stripe_subscription_id:
        return
    gateway.set_subscription_coupon(
        plan_change.license.stripe_subscription_id,
        coupon_id=coupon_id,
        idempotency_key=f"{plan_change.idempotency_key}-discount",
    )


def restore_subscription_discount(tenant: Tenant, gateway: StripeGateway, plan_change: PlanChange) -> None:
    """An unpaid change that carried its own discount is given up: the subscription gets its earlier discount back
    (the licence's renewal discount, or none). Raises the gateway's errors."""
    if not plan_change.discount_percent or plan_change.kind == PlanChangeKind.NEW:
        return
    license = License.objects.for_tenant(tenant).get(pk=plan_change.license_id)
    if not license.stripe_subscription_id or license.stripe_subscription_id != plan_change.from_subscription_id:
        return
    earlier = Decimal(license.renewal_discount_percent or 0)
    coupon_id = gateway.ensure_percent_coupon(earlier, currency=license.currency) if earlier else None
    gateway.set_subscription_coupon(
        license.stripe_subscription_id,
        coupon_id=coupon_id,
        idempotency_key=f"{plan_change.idempotency_key}-discount-restore",
    )
