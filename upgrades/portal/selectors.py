"""What the portal pages read, always for the session's account: other accounts' rows are never found.

URLs carry opaque references (`ref_for`: a keyed hash of kind, tenant and id), never database ids; a
reference is resolved among the session account's own rows only, so a foreign one answers 404.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.http import Http404
from django.utils import formats, timezone
from django.utils.crypto import salted_hmac

from accounts.models import Contact, CustomerAccount, Tenant
from billing.models import License, LicenseChange
from catalog import selectors as catalog_selectors
from catalog.money import format_money, tenant_locale
from upgrades.offers.documents import customer_documents
from upgrades.offers.models import Offer, OfferState, Trial
from usage.selectors.entitlements import get_account_entitlements
from usage.selectors.overview import usage_history

REF_SALT = "tierwise.portal.ref"
OPEN_STATES = (OfferState.SENT, OfferState.VIEWED)
SHOWN_STATES = (OfferState.SENT, OfferState.VIEWED, OfferState.ACCEPTED, OfferState.FULFILLED, OfferState.DECLINED)


def ref_for(kind: str, obj: Any) -> str:
    return salted_hmac(REF_SALT, f"{kind}:{obj.tenant_id}:{obj.pk}").hexdigest()[:24]


# The locale the page in hand writes money in (set per request by `money_locale`).
_MONEY_LOCALE: ContextVar[str | None] = ContextVar("portal_money_locale", default=None)


def locale_for(tenant: Tenant, contact: Contact | None) -> str | None:
    """The contact's locale when they have one (`Contact.locale`), else the tenant's (`Tenant.locale`), else None
    (catalog.money falls back to the language)."""
    own = contact.locale if contact is not None else ""
    if own:
        tenant_free = Tenant(locale=own)  # validated the same way as a tenant's
        chosen = tenant_locale(tenant_free)
        if chosen:
            return chosen
    return tenant_locale(tenant)


@contextmanager
def money_locale(locale: str | None) -> Iterator[None]:
    token = _MONEY_LOCALE.set(locale)
    try:
        yield
    finally:
        _MONEY_LOCALE.reset(token)


def money(amount: int | None, currency: str) -> str:
    return format_money(amount or 0, currency, locale=_MONEY_LOCALE.get())


def local_date(tenant: Tenant, value: datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    zone = zoneinfo.ZoneInfo(tenant.time_zone or "UTC")
    return formats.date_format(timezone.localtime(value, zone), "DATE_FORMAT")


def account_offers(tenant: Tenant, account: CustomerAccount) -> list[Offer]:
    return list(
        Offer.objects.for_tenant(tenant)
        .filter(account=account, state__in=SHOWN_STATES)
        .select_related("plan_change", "account", "settings_version")
        .order_by("-created_at")
    )


def payment_failed(offer: Offer) -> bool:
    """The offer's plan change failed (or Stripe discarded it): the customer may pay again."""
    return offer.plan_change is not None and offer.plan_change.state in ("failed", "canceled")


def get_offer(tenant: Tenant, account: CustomerAccount, ref: str) -> Offer:
    for offer in account_offers(tenant, account):
        if ref_for("offer", offer) == ref:
            return offer
    raise Http404("No such offer.")


def account_trials(tenant: Tenant, account: CustomerAccount) -> list[Trial]:
    return list(Trial.objects.for_tenant(tenant).filter(account=account).order_by("-starts_at"))


def get_trial(tenant: Tenant, account: CustomerAccount, ref: str) -> Trial:
    for trial in account_trials(tenant, account):
        if ref_for("trial", trial) == ref:
            return trial
    raise Http404("No such trial.")


def get_license(tenant: Tenant, account: CustomerAccount) -> License | None:
    return (
        License.objects.for_tenant(tenant)
        .filter(account=account)
        .select_related("tier", "price")
        .prefetch_related("addons")
        .first()
    )


def invoices(tenant: Tenant, account: CustomerAccount) -> list[dict[str, Any]]:
    """Settled plan changes (the licence history), newest first, with their amounts."""
    rows = LicenseChange.objects.for_tenant(tenant).filter(account=account).order_by("-effective_at")[:24]
    out = []
    for row in rows:
        out.append(
            {
                "ref": ref_for("invoice", row),
                "kind": row.get_kind_display() if hasattr(row, "get_kind_display") else row.kind,
                "on": local_date(tenant, row.effective_at),
                "mrr_before": money(row.mrr_before, row.currency),
                "mrr_after": money(row.mrr_after, row.currency),
                "reason": row.reason,
                "invoice": row.stripe_invoice_id,
            }
        )
    return out


def plan_page(tenant: Tenant, account: CustomerAccount, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    license_ = get_license(tenant, account)
    # The API's own entitlement answer and the staff page's usage series (not the whole staff overview).
    entitlements = get_account_entitlements(tenant, account=account, now=now)
    states = list(entitlements.states())
    series = usage_history(tenant, plan=entitlements.plan, states=states, days=30, now=now)
    currency = license_.currency if license_ else tenant.default_currency
    usage_rows = []
    for state in states:
        if state.limit is None and state.kind != "metered":
            continue
        percent = (state.used or 0) * 100 // state.limit if state.limit else None
        usage_rows.append(
            {
                "name": state.name,
                "unit": state.unit,
                "used": state.used or 0,
                "limit": state.limit,
                "percent": percent,
                "state": state.state,
            }
        )
    charts = [
        {
            "id": f"chart-{i}",
            "name": s.name,
            "limit": s.limit,
            "data": json.dumps(
                {"labels": [d.isoformat() for d in s.days], "counted": list(s.counted), "limit": s.limit}
            ),
            "last": s.counted[-1] if s.counted else 0,
            "unit": s.unit,
        }
        for i, s in enumerate(series)
    ]
    renewal_amount = None
    if license_ is not None:
        renewal_amount = money(license_.price.amount * license_.seats, currency)
    return {
        "license": license_,
        "addons": list(license_.addons.all()) if license_ else [],
        "renewal_on": local_date(tenant, license_.current_period_end) if license_ else "",
        "renewal_amount": renewal_amount,
        "usage_rows": usage_rows,
        "charts": charts,
        "invoices": invoices(tenant, account),
        "offers": [
            {"ref": ref_for("offer", o), "offer": o, "expires_on": local_date(tenant, o.expires_at)}
            for o in account_offers(tenant, account)
        ],
        "trials": [
            {"ref": ref_for("trial", t), "trial": t, "ends_on": local_date(tenant, t.ends_at)}
            for t in account_trials(tenant, account)
        ],
        # A CSM's proposals, through the offers layer's registry (the portal never imports the console).
        "proposals": [
            {"doc": d, "shared_on": local_date(tenant, d.shared_at)}
            for d in customer_documents(tenant, account, "proposal")
        ],
    }


def _held(tenant: Tenant, license_: License | None) -> tuple[Any, Any]:
    """The offers engine's exact holding (tier and price version, add-ons, their entitlement rows)."""
    if license_ is None:
        return None, None
    from upgrades.offers.recommendation.catalog import load_catalog
    from upgrades.offers.recommendation.holding import load_holding

    catalog = load_catalog(tenant)
    return load_holding(tenant, license=license_, catalog=catalog), catalog


def compare_page(tenant: Tenant, account: CustomerAccount, *, interval: str) -> dict[str, Any]:
    """The published tiers at the chosen interval, the saving of annual, and what each changes for me:
    compared with exactly what the account holds (the engine's holding), so a grandfathered licence (a
    retired tier or price version) sees what it keeps and loses."""
    from upgrades.offers.recommendation.catalog import combine
    from upgrades.offers.recommendation.types import changes_between

    license_ = get_license(tenant, account)
    currency = license_.currency if license_ else tenant.default_currency
    seats = license_.seats if license_ else 1
    holding, catalog = _held(tenant, license_)
    tiers = []
    for tier in catalog_selectors.list_published_tiers(tenant):
        prices = [p for p in tier.prices.all() if p.currency == currency and p.state == "published"]
        month = next((p for p in prices if p.interval == "month"), None)
        year = next((p for p in prices if p.interval == "year"), None)
        chosen = year if interval == "year" else month
        if chosen is None:
            continue
        gained: list[str] = []
        lost: list[str] = []
        limits: list[dict[str, Any]] = []
        if holding is not None:
            features = catalog.features.get(tier.product_id, [])
            names = {f.key: f.name for f in features}
            change = changes_between(holding.entitlements, combine(features, tier.entitlements.all()))
            gained = [names.get(k, k) for k in change["gained"]]
            lost = [names.get(k, k) for k in change["lost"]]
            limits = [
                {"name": names.get(c["feature"], c["feature"]), "from": c["from"], "to": c["to"]}
                for c in change["limits"]
            ]
        saving = None
        if month is not None and year is not None and month.amount * 12 > year.amount:
            saved = month.amount * 12 - year.amount
            saving = {"amount": money(saved * seats, currency), "percent": f"{saved * 100 / (month.amount * 12):.0f}"}
        tiers.append(
            {
                "tier": tier,
                "current": license_ is not None and license_.tier_id == tier.pk,
                "price": money(chosen.amount * seats, currency),
                "monthly_price": money(month.amount * seats, currency) if month else "",
                "saving": saving,
                "gained": gained,
                "lost": lost,
                "limits": limits,
                "outcomes": [o for o in tier.outcomes or [] if isinstance(o, str)],
            }
        )
    bundles = [
        b
        for b in catalog_selectors.list_published_bundles(tenant)
        if b.audience_kind != "industry" or (account.industry and b.audience.lower() == account.industry.lower())
    ]
    grandfathered = bool(holding is not None and holding.grandfathered)
    return {
        "tiers": tiers,
        "bundles": bundles,
        "seats": seats,
        "interval": interval,
        "grandfathered": grandfathered,
        "license": license_,
        "held_price": money(license_.price.amount * seats, currency) if license_ else "",
        "renewal_on": local_date(tenant, license_.current_period_end) if license_ else "",
    }
