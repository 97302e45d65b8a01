"""Demo billing: licences for the demo accounts, their subscriptions in the Stripe stand-in, a settled upgrade
with its invoice, and a trial in progress. Idempotent: accounts that hold a licence are left alone.

Licences are spread over the catalog's published tiers (read by key: free / team / business /
enterprise for the demo tenant). When `STRIPE_API_BASE` answers, each paid licence gets a
customer (card 4242…) and a subscription there, and the tenant gets demo Stripe keys and a
webhook registered to this site; otherwise licences only, and a note says so.
"""

from __future__ import annotations

import os
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.demo import DemoTenant
from accounts.models import CustomerAccount, SizeBand, Tenant
from accounts.services import record_audit, snapshot
from accounts.tenancy import tenant_context
from billing.models import (
    GrantKind,
    License,
    LicenseGrant,
    LicenseStatus,
    PlanChange,
    PlanChangeState,
    StripeAccount,
)
from billing.services import licenses as license_services
from billing.services import plan_changes
from billing.services.catalog_sync import ensure_stripe_price, sync_stripe_catalog
from billing.services.stripe_accounts import save_stripe_keys, stripe_for
from billing.stripe_client import ItemTarget, StripeError, StripeGateway
from catalog.models import GovernanceState, Price, Tier
from catalog.selectors import tier_seat_limit
from catalog.templatetags.catalog_money import money

SEATS_BY_SIZE = {
    SizeBand.MICRO: (1, 5),
    SizeBand.SMALL: (3, 20),
    SizeBand.MEDIUM: (10, 60),
    SizeBand.LARGE: (40, 200),
    SizeBand.XLARGE: (100, 400),
    SizeBand.ENTERPRISE: (200, 800),
}
# Share of accounts per tier rank (lowest first): most on entry tiers, a few at the top.
TIER_WEIGHTS = [35, 35, 20, 10]
DEMO_TRIAL_REFERENCE = "demo-trial"
DEMO_TRIAL_DAYS, DEMO_TRIAL_DAYS_IN = 14, 5
DEMO_UPGRADE_REFERENCE = "demo-upgrade"


def _say(message: str) -> None:
    sys.stdout.write(f"[billing] {message}\n")


def _stand_in_answers() -> bool:
    base = settings.STRIPE_API_BASE
    if not base:
        return False
    try:
        with urllib.request.urlopen(f"{base.rstrip('/')}/_standin/health", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _register_webhook(tenant: Tenant, *, api_key: str, secret: str) -> None:
    """Dev only: tell the stand-in where this site listens (real Stripe: set in the Stripe dashboard)."""
    site = os.environ.get("SITE_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    data = urllib.parse.urlencode(
        {"url": f"{site.rstrip('/')}/billing/stripe/webhook/{tenant.slug}/", "secret": secret, "api_key": api_key}
    ).encode()
    url = f"{settings.STRIPE_API_BASE.rstrip('/')}/_config/webhooks/{tenant.slug}"
    if not url.startswith(("http://", "https://")):
        raise ValueError("STRIPE_API_BASE must be an http(s) URL")
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback stand-in
        pass


def _tiers(tenant: Tenant) -> list[Tier]:
    """The newest published version of each tier key that can be held (priced, or free), lowest rank first."""
    latest: dict[str, Tier] = {}
    for tier in Tier.objects.for_tenant(tenant).filter(state=GovernanceState.PUBLISHED).order_by("rank", "version"):
        if tier.is_free or tier.prices.filter(state=GovernanceState.PUBLISHED).exists():
            latest[tier.key] = tier
    return sorted(latest.values(), key=lambda t: t.rank)


def _price(tier: Tier, interval: str) -> Price | None:
    return (
        tier.prices.filter(state=GovernanceState.PUBLISHED, interval=interval).order_by("-version").first()
        or tier.prices.filter(state=GovernanceState.PUBLISHED).order_by("-version").first()
    )


def seed_billing(demo: DemoTenant, other: DemoTenant) -> None:
    """Called once from seed_demo, after the catalogs."""
    stripe_on = _stand_in_answers()
    if not stripe_on:
        _say("Stripe stand-in not reachable (STRIPE_API_BASE): licences only, no subscriptions.")
    for index, seeded in enumerate((demo, other)):
        with tenant_context(seeded.tenant):  # row-level security: each tenant's rows inside it
            seed_tenant_billing(seeded.tenant, seed=31 + index, stripe_on=stripe_on, showcase=index == 0)


def seed_tenant_billing(tenant: Tenant, *, seed: int, stripe_on: bool, showcase: bool) -> None:
    tiers = _tiers(tenant)
    if not tiers:
        _say(f"{tenant.slug}: no published tiers with prices yet; no licences seeded.")
        return
    gateway: StripeGateway | None = None
    if stripe_on:
        api_key, secret = f"sk_test_demo_{tenant.slug}", f"whsec_demo_{tenant.slug}_signing"
        # The stand-in's publishable key of sk_test_X is pk_test_X (the portal's card entry uses it).
        publishable = f"pk_test_demo_{tenant.slug}"
        stored = StripeAccount.objects.for_tenant(tenant).first()
        if stored is None:
            save_stripe_keys(tenant, actor="demo-seed", secret_key=api_key, webhook_secret=secret,
                             publishable_key=publishable)  # fmt: skip
        elif not stored.publishable_key:
            save_stripe_keys(tenant, actor="demo-seed", publishable_key=publishable)
        _register_webhook(tenant, api_key=api_key, secret=secret)
        gateway = stripe_for(tenant)
        sync_stripe_catalog(tenant, gateway=gateway)

    rng = random.Random(seed)
    weights = (TIER_WEIGHTS + [5] * len(tiers))[: len(tiers)]
    held = set(License.objects.for_tenant(tenant).values_list("account_id", flat=True))
    seat_limits = {tier.pk: tier_seat_limit(tier) for tier in tiers}  # None: no seat limit
    now = timezone.now().replace(microsecond=0)
    created = 0
    for account in CustomerAccount.objects.for_tenant(tenant).order_by("external_id"):
        tier = rng.choices(tiers, weights=weights)[0]
        interval = "year" if rng.random() < 0.25 else "month"
        low, high = SEATS_BY_SIZE.get(account.size_band, (1, 10))
        seats = min(rng.randint(low, high), seat_limits.get(tier.pk) or 10**9)  # never above what the tier allows
        days_in = rng.randint(1, 360 if interval == "year" else 28)
        term = rng.choice([1, 1, 2, 3]) if interval == "year" else 1
        if account.pk in held:
            continue
        price = _price(tier, interval)
        if price is None and not tier.is_free:
            continue
        if (price.interval if price is not None else "month") == "month":
            # The price may fall back to the other interval (and free licences run monthly): a monthly
            # period started within the last month, so no licence opens with its period already over.
            days_in = (days_in - 1) % 28 + 1
        start = now - timedelta(days=days_in)
        with transaction.atomic():
            license = license_services.provision_license(
                tenant,
                account=account,
                price=price,
                tier=tier,
                seats=seats,
                actor="demo-seed",
                period_start=start,
                term_years=term if price is not None else 1,
                reason="Demo data",
            )
            if gateway is not None:
                _subscribe(tenant, gateway, license, price)
        created += 1
    if created:
        _say(
            f"{tenant.slug}: {created} licence(s) seeded"
            + (" with subscriptions in the Stripe stand-in." if gateway is not None else ".")
        )
    if showcase:
        _seed_trial(tenant, tiers)
        if gateway is not None:
            _seed_settled_upgrade(tenant, tiers)


def _subscribe(tenant: Tenant, gateway: StripeGateway, license: License, price: Price | None) -> None:
    """A Stripe customer with a working card for every licence; a subscription for the paid ones."""
    account = license.account
    try:
        contact = account.contacts.order_by("pk").first()
        customer = gateway.create_customer(
            email=contact.email if contact else "",
            name=account.name,
            metadata={"tierwise_account": account.external_id},
            idempotency_key=f"demo-{tenant.pk}-customer-{account.pk}",
            payment_method="pm_card_visa",
        )
        if price is None or price.amount == 0:
            license_services.set_stripe_customer(tenant, license=license, customer_id=customer.id)
            return
        stripe_price = ensure_stripe_price(tenant, price=price, gateway=gateway)
        subscription = gateway.create_subscription(
            customer_id=customer.id,
            items=[ItemTarget(stripe_price.stripe_price_id, license.seats if price.per_seat else 1)],
            idempotency_key=f"demo-{tenant.pk}-subscription-{account.pk}",
            metadata={"tierwise_account": account.external_id},
            backdate_start=license.current_period_start,
        )
    except StripeError as exc:
        _say(f"{account.external_id}: no subscription in the stand-in ({exc.message})")
        return
    license_services.attach_stripe_subscription(
        tenant, license=license, customer_id=customer.id, subscription=subscription
    )


def _seed_trial(tenant: Tenant, tiers: list[Tier]) -> None:
    if LicenseGrant.objects.for_tenant(tenant).filter(reference=DEMO_TRIAL_REFERENCE).exists() or len(tiers) < 3:
        return
    license = (
        License.objects.for_tenant(tenant)
        .filter(tier__key=tiers[1].key, status=LicenseStatus.ACTIVE)
        .select_related("account")
        .order_by("account__external_id")
        .first()
    )
    if license is None:
        return
    # A 14-day trial five days in, so it is visibly in progress. The service starts grants now, so it is
    # given the real end (9 days from now: what the audit entry and the licence page both show), and only
    # the start is moved back, with its own audit entry: the log tells what the seed did.
    now = timezone.now().replace(microsecond=0)
    with timezone.override(ZoneInfo(tenant.time_zone)):  # the audit's "until <date>" in the tenant's calendar
        grant = license_services.start_grant(
            tenant,
            account=license.account,
            kind=GrantKind.TRIAL,
            tier=tiers[2],
            ends_at=now + timedelta(days=DEMO_TRIAL_DAYS - DEMO_TRIAL_DAYS_IN),
            actor="demo-seed",
            reason=f"Trial of {tiers[2].name}",
            reference=DEMO_TRIAL_REFERENCE,
        )
    with transaction.atomic(), timezone.override(ZoneInfo(tenant.time_zone)):
        before = snapshot(grant, ["starts_at", "ends_at"])
        grant.starts_at -= timedelta(days=DEMO_TRIAL_DAYS_IN)
        LicenseGrant.objects.filter(pk=grant.pk).update(starts_at=grant.starts_at)
        record_audit(
            tenant,
            actor="demo-seed",
            action="license_grant.backdated",
            obj=grant,
            before=before,
            after={
                **snapshot(grant, ["starts_at", "ends_at"]),
                "reason": f"Demo data: a {DEMO_TRIAL_DAYS}-day trial started {DEMO_TRIAL_DAYS_IN} days ago",
            },
        )
    _say(f"{tenant.slug}: trial of {tiers[2].name} in progress for {license.account.external_id}.")


def _seed_settled_upgrade(tenant: Tenant, tiers: list[Tier]) -> None:
    if PlanChange.objects.for_tenant(tenant).filter(reference=DEMO_UPGRADE_REFERENCE).exists() or len(tiers) < 3:
        return
    trial_accounts = LicenseGrant.objects.for_tenant(tenant).values_list("account_id", flat=True)
    license = (
        License.objects.for_tenant(tenant)
        .filter(tier__key=tiers[1].key, status=LicenseStatus.ACTIVE, interval="month")
        .exclude(stripe_subscription_id="")
        .exclude(account_id__in=trial_accounts)
        .order_by("account__external_id")
        .first()
    )
    target = _price(tiers[2], "month")
    if license is None or target is None:
        return
    try:
        quote = plan_changes.quote_plan_change(
            tenant, license=license, target_price=target, reference=DEMO_UPGRADE_REFERENCE, requested_by="demo-seed"
        )
        plan_changes.confirm_plan_change(tenant, plan_change=quote, actor="demo-seed")
        # Hand it to Stripe now rather than waiting for the worker, so the demo opens on a settled upgrade.
        settled = plan_changes.submit_plan_change(tenant, plan_change_id=quote.pk)
    except (StripeError, Exception) as exc:  # noqa: BLE001 - the demo goes on without its showcase upgrade
        _say(f"{tenant.slug}: the showcase upgrade did not go through ({exc}).")
        return
    if settled.state == PlanChangeState.SETTLED:
        _say(
            f"{tenant.slug}: {license.account.external_id} upgraded to {tiers[2].name}; invoice "
            f"{settled.stripe_invoice_id} paid {money(settled.charged_amount, settled.currency)}."
        )
