"""Demo offers: live offer settings (drafted by pm@, approved by pm2@), offers the real engine builds from
the demo's fired signals (upgrades/rules/demo.py), moved through the real services into every state,
and a trial in progress with early wins. Audit entries are credited to "demo-seed".

Idempotent, also after people used the demo: each demo slot (awaiting review, sent, viewed, declined,
expired, withdrawn, accepted, fulfilled) is recorded once as an audit entry `offer.demo_slot` naming
its offer; a slot already filled is never filled again, whatever happened to its offer since. The
"sent" slot is left for a person to accept (admin: Offers › the offer › Accept for the customer, or
POST /api/v1/offers/{id}/accept) and watch the licence change.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEntry, Tenant, User
from accounts.services import audited_as, record_audit, snapshot
from accounts.tenancy import tenant_context
from billing.errors import BillingUnavailable
from billing.models import License, LicenseGrant, PlanChangeState
from billing.services import plan_changes
from catalog.demo import SEED_ACTOR
from catalog.models import GovernanceState, Meter, Tier
from catalog.selectors import get_discount_policy
from upgrades.offers.errors import TierwiseError
from upgrades.offers.models import Offer, OfferSettings, SettingsState, Trial
from upgrades.offers.selectors import get_live_settings
from upgrades.offers.services import settings as settings_services
from upgrades.offers.services.acceptance import accept_offer, open_offer
from upgrades.offers.services.building import build_offer
from upgrades.offers.services.declines import decline_offer
from upgrades.offers.services.expiry import expire_offers_for_tenant
from upgrades.offers.services.review import withdraw_offer
from upgrades.offers.services.trials import start_trial
from upgrades.offers.services.trials_wins import record_early_wins
from upgrades.rules.models import Signal, SignalKind, SignalState
from usage.services import ingest_events

SLOT_ACTION = "offer.demo_slot"
SLOTS = ("awaiting_review", "sent", "viewed", "declined", "expired", "withdrawn", "accepted", "fulfilled")
PAID = ("accepted", "fulfilled")  # slots whose acceptance is paid through Stripe
OVER_CAP_VARIANT = "rescue-deal"
TRIAL_DAYS_IN = 5


def _say(message: str) -> None:
    sys.stdout.write(f"[offers] {message}\n")


# --- settings -------------------------------------------------------------------------------


def demo_value_model(tenant: Tenant) -> list[dict[str, Any]]:
    meters = set(Meter.objects.for_tenant(tenant).values_list("key", flat=True))
    drivers: list[dict[str, Any]] = []
    if "api_calls" in meters:
        drivers.append({"kind": "hours_saved", "meter": "api_calls", "hours_per_unit": "0.001", "hourly_cost": 6500,
                        "label": "Engineering time no longer spent on rate-limit workarounds"})  # fmt: skip
    drivers.append({"kind": "incidents_avoided", "per_month": "0.5", "cost_per_incident": 180_000,
                    "label": "Outages avoided by staying inside the limits"})  # fmt: skip
    drivers.append({"kind": "revenue_at_risk", "amount": 2_400_000, "probability_percent": "3",
                    "label": "Renewals protected by single sign-on and audit logs"})  # fmt: skip
    return drivers


def demo_variants(tenant: Tenant) -> list[dict[str, str]]:
    policy = get_discount_policy(tenant)
    over = int(policy.cap_percent) + 10 if policy is not None else 40
    return [
        {"key": "none", "percent": "0", "explanation": ""},
        {"key": "launch10", "percent": "10", "explanation": "Launch offer"},
        {"key": OVER_CAP_VARIANT, "percent": str(min(over, 100)),
         "explanation": "Win-back deal for an at-risk renewal"},
    ]  # fmt: skip


def _users(tenant: Tenant) -> dict[str, User]:
    domain = f"{tenant.slug}.test"
    emails = {"pm": f"pm@{domain}", "pm2": f"pm2@{domain}", "csm": f"csm@{domain}"}
    found = {u.email: u for u in User.objects.filter(email__in=emails.values())}
    return {role: found[email] for role, email in emails.items() if email in found}


def ensure_live_settings(tenant: Tenant, users: dict[str, User]) -> OfferSettings | None:
    """The live settings; the first time, a version drafted by pm@ and approved by pm2@ (four eyes)."""
    live = get_live_settings(tenant)
    if live is not None:
        return live
    if OfferSettings.objects.for_tenant(tenant).exists():
        _say(f"{tenant.slug}: offer settings exist but none is live (someone changed them); no offers seeded.")
        return None
    if "pm" not in users or "pm2" not in users:
        return None
    draft = settings_services.create_settings_draft(
        tenant, actor=users["pm"], name="Acme offer settings",
        signal_kinds=[SignalKind.UPGRADE_OPPORTUNITY, SignalKind.TRIAL_CANDIDATE], expiry_days=21,
        value_model=demo_value_model(tenant), discount_variants=demo_variants(tenant), trial_days=14,
    )  # fmt: skip
    draft = settings_services.submit_settings(tenant, settings=draft, actor=users["pm"])
    return settings_services.approve_settings(
        tenant, settings=draft, actor=users["pm2"],
        comment="Drivers checked against last quarter's support costs; the rescue deal stays per-offer approval.",
    )  # fmt: skip


# --- offers ---------------------------------------------------------------------------------


def filled_slots(tenant: Tenant) -> dict[str, int]:
    entries = AuditEntry.objects.filter(tenant=tenant, action=SLOT_ACTION).values_list("after", "object_id")
    return {after["slot"]: int(object_id) for after, object_id in entries if after and object_id.isdigit()}


def _candidates(tenant: Tenant, kinds: list[str]) -> list[Signal]:
    busy = set(Offer.objects.for_tenant(tenant).values_list("account_id", flat=True))
    licensed = set(License.objects.for_tenant(tenant).exclude(price=None).values_list("account_id", flat=True))
    signals = (
        Signal.objects.for_tenant(tenant).filter(state=SignalState.OPEN, kind__in=kinds)
        .select_related("account").order_by("-priority", "pk")
    )  # fmt: skip
    out, seen = [], set()
    for s in signals:
        if s.account_id in busy or s.account_id not in licensed or s.account_id in seen:
            continue
        seen.add(s.account_id)
        out.append(s)
    return out


def _build(tenant: Tenant, pool: list[Signal], *, billed: bool = False, **kwargs: Any) -> Offer | None:
    """The engine's offer for the next signal it can make one for (a signal it can't is left alone).

    `billed`: only accounts whose licence has a Stripe subscription (an acceptance is paid through it)."""
    subscribed = (
        set(License.objects.for_tenant(tenant).exclude(stripe_subscription_id="").values_list("account_id", flat=True))
        if billed else None
    )  # fmt: skip
    for signal in list(pool):
        if subscribed is not None and signal.account_id not in subscribed:
            continue
        pool.remove(signal)
        try:
            with transaction.atomic():
                return build_offer(tenant, account=signal.account, actor=SEED_ACTOR, signal=signal, **kwargs)
        except TierwiseError:
            continue
    return None


DECLINING_CARD = "4000000000000002"  # Stripe's (and the stand-in's) test card that is always declined


def _decline_card_in_stand_in(tenant: Tenant, offer: Offer) -> None:
    """Dev only: the "accepted" demo offer's customer gets a declining card in the Stripe stand-in, so the
    offer stays accepted with the failure shown and a retry path (real Stripe is never asked this)."""
    base = django_settings.STRIPE_API_BASE
    lic = License.objects.for_tenant(tenant).filter(account_id=offer.account_id).first()
    if not base or lic is None or not lic.stripe_customer_id:
        return
    data = urllib.parse.urlencode({"number": DECLINING_CARD}).encode()
    url = f"{base.rstrip('/')}/_standin/customers/{lic.stripe_customer_id}/card"
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=5).close()  # noqa: S310
    except (urllib.error.URLError, OSError, ValueError) as exc:
        _say(f"{tenant.slug}: the stand-in did not take the declining card ({exc}).")


def _settle(tenant: Tenant, offer: Offer) -> Offer:
    """Hand the accepted offer's plan change to Stripe now (as billing's demo does), then catch up."""
    if offer.plan_change_id is None:
        return offer
    settled = plan_changes.submit_plan_change(tenant, plan_change_id=offer.plan_change_id)
    if settled.state == PlanChangeState.SETTLED:
        expire_offers_for_tenant(tenant)  # fulfils accepted offers whose payment settled (the receiver's sweep)
    offer.refresh_from_db()
    return offer


def _move(tenant: Tenant, slot: str, offer: Offer, users: dict[str, User], settings: OfferSettings) -> Offer:
    """Take a freshly built (sent or awaiting review) offer to the slot's state through the services."""
    if slot == "viewed":
        return open_offer(tenant, offer=offer, actor=SEED_ACTOR)
    if slot == "declined":
        offer = open_offer(tenant, offer=offer, actor=SEED_ACTOR)
        decline_offer(tenant, offer=offer, reason_code="too_expensive", source="portal", actor=SEED_ACTOR,
                      text="The budget for tools is set until April; ask us again then.")  # fmt: skip
    elif slot == "expired":
        expire_offers_for_tenant(tenant)  # built with an earlier clock: already past its expiry
    elif slot == "withdrawn" and "csm" in users:
        withdraw_offer(tenant, offer=offer, actor=users["csm"],
                       reason="The customer asked to talk to their CSM before any offer.")  # fmt: skip
    elif slot in ("accepted", "fulfilled"):
        offer = open_offer(tenant, offer=offer, actor=SEED_ACTOR)
        if slot == "accepted":
            _decline_card_in_stand_in(tenant, offer)
        offer = accept_offer(tenant, offer=offer, option_key=offer.recommended_option, actor=SEED_ACTOR)
        if slot == "fulfilled":
            offer = _settle(tenant, offer)
    offer.refresh_from_db()
    return offer


def _fill(tenant: Tenant, slot: str, pool: list[Signal], users: dict[str, User], settings: OfferSettings) -> bool:
    kwargs: dict[str, Any] = {}
    if slot == "awaiting_review":
        kwargs["variant"] = OVER_CAP_VARIANT  # over the policy cap: waits for the owner's approval
    if slot == "expired":
        kwargs["now"] = timezone.now() - timedelta(days=settings.expiry_days + 1)
    offer = _build(tenant, pool, billed=slot in PAID, **kwargs)
    if offer is None:
        return False
    try:
        with transaction.atomic():
            offer = _move(tenant, slot, offer, users, settings)
    except (BillingUnavailable, TierwiseError) as exc:
        _say(f"{tenant.slug}: offer {offer.pk} stays {offer.get_state_display().lower()} ({exc}).")
        offer.refresh_from_db()
    record_audit(tenant, actor=SEED_ACTOR, action=SLOT_ACTION, obj=offer, after={"slot": slot, "state": offer.state})
    return True


def seed_offers(tenant: Tenant, settings: OfferSettings, users: dict[str, User]) -> dict[str, int]:
    filled = filled_slots(tenant)
    pool = _candidates(tenant, list(settings.signal_kinds or [SignalKind.UPGRADE_OPPORTUNITY]))
    for slot in SLOTS:
        if slot in filled:
            continue
        if not _fill(tenant, slot, pool, users, settings):
            why = (
                "needs licences with Stripe subscriptions (run the Stripe stand-in)"
                if slot in PAID
                else "no fired signal left"
            )
            _say(f"{tenant.slug}: no '{slot}' offer: {why}.")
    return filled_slots(tenant)


# --- a trial --------------------------------------------------------------------------------


def _next_tier(tenant: Tenant, license: License) -> Tier | None:
    return (
        Tier.objects.for_tenant(tenant)
        .filter(product_id=license.tier.product_id, state=GovernanceState.PUBLISHED, rank__gt=license.tier.rank)
        .order_by("rank").first()
    )  # fmt: skip


def _backdate(tenant: Tenant, trial: Trial) -> None:
    """The service starts trials now; the demo shows one five days in, and the audit log says it moved it."""
    before = snapshot(trial, ["starts_at", "ends_at"])
    shift = timedelta(days=TRIAL_DAYS_IN)
    Trial.objects.for_tenant(tenant).filter(pk=trial.pk).update(starts_at=trial.starts_at - shift)
    LicenseGrant.objects.for_tenant(tenant).filter(pk=trial.grant_id).update(starts_at=trial.starts_at - shift)
    trial.refresh_from_db()
    record_audit(tenant, actor=SEED_ACTOR, action="trial.backdated", obj=trial, before=before,
                 after={**snapshot(trial, ["starts_at", "ends_at"]),
                        "reason": f"Demo data: a trial started {TRIAL_DAYS_IN} days ago"})  # fmt: skip


def _use_unlocked(tenant: Tenant, trial: Trial) -> None:
    """What the customer did with the trial: a few uses of each unlocked feature, ingested like any event."""
    now = timezone.now()
    events = [
        {"event": "feature.used", "account": trial.account.external_id, "idempotency_key":
         f"demo-trial-{trial.pk}-{feature}-{day}", "timestamp": (now - timedelta(days=day, hours=2)).isoformat(),
         "properties": {"feature": feature}}
        for feature in trial.unlocked_features[:3] for day in range(TRIAL_DAYS_IN - 1)
    ]  # fmt: skip
    if events:
        ingest_events(tenant, events=events, actor=SEED_ACTOR, now=now)


def seed_trial(tenant: Tenant) -> Trial | None:
    existing = Trial.objects.for_tenant(tenant).filter(started_by_label=SEED_ACTOR).first()
    if existing is not None:
        return existing
    signals = Signal.objects.for_tenant(tenant).filter(kind=SignalKind.TRIAL_CANDIDATE).order_by("-priority", "pk")
    busy = set(Trial.objects.for_tenant(tenant).values_list("account_id", flat=True))
    busy |= set(LicenseGrant.objects.for_tenant(tenant).values_list("account_id", flat=True))
    accounts = [s.account_id for s in signals] + list(
        License.objects.for_tenant(tenant).exclude(price=None).order_by("account__external_id")
        .values_list("account_id", flat=True)
    )  # fmt: skip
    for account_id in dict.fromkeys(accounts):
        license = License.objects.for_tenant(tenant).filter(account_id=account_id).select_related("tier").first()
        target = _next_tier(tenant, license) if license is not None and account_id not in busy else None
        if target is None:
            continue
        try:
            with transaction.atomic():
                trial = start_trial(tenant, account=license.account, target_kind="tier", target_key=target.key,
                                    actor=SEED_ACTOR, source="csm")  # fmt: skip
                if not trial.unlocked_features:
                    raise _NoUnlock
        except (TierwiseError, _NoUnlock):
            continue
        _backdate(tenant, trial)
        _use_unlocked(tenant, trial)
        record_early_wins(tenant, trial=trial)
        return trial
    return None


class _NoUnlock(Exception):
    """A trial that unlocks no feature shows no early win: try another account."""


def seed_offers_demo(tenant: Tenant) -> dict[str, Any]:
    """Live settings, offers in every state, a trial with early wins. Returns what is there."""
    with tenant_context(tenant), audited_as(SEED_ACTOR):
        users = _users(tenant)
        settings = ensure_live_settings(tenant, users)
        if settings is None:
            return {"settings": None, "slots": {}, "trial": None}
        slots = seed_offers(tenant, settings, users)
        trial = seed_trial(tenant)
    if slots.get("sent"):
        _say(f"{tenant.slug}: offer {slots['sent']} is sent and waiting: accept it in the admin (Offers) or the API.")
    return {"settings": settings, "slots": slots, "trial": trial}


__all__ = ["SEED_ACTOR", "SLOTS", "SettingsState", "seed_offers_demo"]
