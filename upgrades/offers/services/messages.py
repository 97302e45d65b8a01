"""Lifecycle messages of offers, trials and renewals: which moment sends which template, once.

Messaging (messaging/__init__.py) sends what it is given and decides caps, consent, quiet hours and
the quiet period after a decline; this module decides *when* each lifecycle message is due and what
it says. Everything is a due-time check run by beat (`send_due_lifecycle_messages`), never a long
countdown: a moment is due from its time until `GRACE` later, so a sweep that missed a run catches
up and a message whose moment passed long ago (a feature switched on today) is not sent late.

Cadences (template keys are the demo's; the cause keys each send so it happens at most once):
    offer sent          offer-sent          offer:<id>:sent            once it reached the customer
    one reminder        offer-reminder      offer:<id>:reminder        REMINDER_AFTER later, still open
    trial day 1         trial-started       trial:<id>:started         when it starts
    mid-trial wins      trial-midpoint      trial:<id>:midpoint        halfway, only with early wins
    2 days before end   trial-ending        trial:<id>:ending          not after an upgrade
    ended               trial-ended         trial:<id>:ended           after the sunset (not converted)
    renewal 90/60/30    renewal-90/60/30    renewal:<licence>:<date>:N annual licences, with the open offer
    decline follow-up   decline-follow-up   offer:<id>:decline-follow-up  when the quiet period is over
Uniqueness is messaging's: (contact, template key, cause) is admitted once, ever, by one arbitrated
insert, so a sweep run twice or by two workers sends nothing twice. A key with no live template is
skipped (not burnt), so a template approved later still sends for moments in its grace window.

Declines: the first sweep after a decline records it with messaging (`note_decline`), which starts
the quiet period; the follow-up is due when it ends.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings as django_settings
from django.db.models import Q
from django.utils import formats, timezone

from accounts.models import Contact, Tenant
from accounts.tenancy import each_tenant
from billing.models import License, LicenseStatus
from billing.services.licenses import expected_renewal_total
from catalog.models import GovernanceState, Price
from catalog.money import format_money
from messaging import selectors as messaging_selectors
from messaging import services as messaging
from messaging.models import DeclineQuiet, MessageState
from upgrades.offers.models import Offer, OfferState, Trial, TrialState
from upgrades.offers.services.trials_wins import record_early_wins, target_name, trial_progress

GRACE = timedelta(days=3)
REMINDER_AFTER = timedelta(days=7)
TRIAL_ENDING_BEFORE = timedelta(days=2)
RENEWAL_STEPS = (90, 60, 30)
RENEWAL_GRACE = timedelta(days=7)
MAX_CONTACTS = 5  # per account and message; the cap and consent are messaging's
UPGRADE, TRANSACTIONAL = "upgrade", "transactional"
ADMITTED = (MessageState.QUEUED, MessageState.HELD, MessageState.SENT)
VISIBLE = (OfferState.SENT, OfferState.VIEWED)


@dataclass(frozen=True)
class Due:
    """One lifecycle message that is due now for one account."""

    account_id: int
    template_key: str
    cause: str
    category: str
    # Built only for a message some contact hasn't had yet (most sweeps find everything already sent);
    # None: nothing to say after all (a midpoint without early wins).
    build: Callable[[], dict[str, Any] | None]
    variant: str | None = None  # a template variant to send (an experiment's arm); None: messaging picks
    channel: str = "email"  # an experiment's arm may send its offer in-app instead (messaging's Channel values)


# --- formatting and links ------------------------------------------------------------------------------


def _date(tenant: Tenant, value: datetime) -> str:
    zone = zoneinfo.ZoneInfo(tenant.time_zone or "UTC")
    return formats.date_format(timezone.localtime(value, zone), "DATE_FORMAT")


def portal_url(tenant: Tenant, *, path: str = "") -> str:
    """Where the customer's portal answers (links to one offer come from `offer_url`)."""
    return f"{django_settings.SITE_URL}/portal/{tenant.slug}/{path}".rstrip("/")


# The portal (upgrades.portal, which sits above offers) registers its signed, expiring offer-link builder
# here from upgrades.apps; offers never import the portal.
OFFER_LINK_BUILDERS: list[Callable[..., str]] = []
# Experiments (upgrades.experiments, above offers) register `(tenant, offer) -> template variant | None` here
# from upgrades.apps: an offer built for an experiment's arm is emailed with that arm's template variant.
OFFER_TEMPLATE_VARIANTS: list[Callable[..., str | None]] = []


def _template_variant(tenant: Tenant, offer: Offer) -> str | None:
    if not offer.variant or not OFFER_TEMPLATE_VARIANTS:
        return None  # outside experiments: messaging picks among the live variants
    return OFFER_TEMPLATE_VARIANTS[0](tenant, offer=offer)


# ... and `(tenant, offer) -> "email" | "in_app" | None`: an offer built for an arm with a channel is sent
# through that channel only; None: email.
OFFER_CHANNELS: list[Callable[..., str | None]] = []
OFFER_CHANNEL_CHOICES = ("email", "in_app")


def _channel(tenant: Tenant, offer: Offer) -> str:
    if not offer.variant or not OFFER_CHANNELS:
        return "email"
    channel = OFFER_CHANNELS[0](tenant, offer=offer)
    return channel if channel in OFFER_CHANNEL_CHOICES else "email"


def offer_url(tenant: Tenant, offer: Offer) -> str:
    if OFFER_LINK_BUILDERS:
        return OFFER_LINK_BUILDERS[0](tenant, offer=offer)
    return portal_url(tenant, path=f"offers/{offer.pk}")


def _in_window(due: datetime, now: datetime, grace: timedelta = GRACE) -> bool:
    return due <= now < due + grace


# --- contexts -------------------------------------------------------------------------------------------


def _option(offer: Offer) -> dict[str, Any]:
    options = offer.options or []
    return next((o for o in options if o.get("key") == offer.recommended_option), options[0] if options else {})


def offer_context(tenant: Tenant, offer: Offer) -> dict[str, Any]:
    option = _option(offer)
    currency = offer.currency or tenant.default_currency
    amount = int(option.get("amount") or 0)
    tier = option.get("tier_name") or offer.target_key
    evidence = offer.evidence or {}
    sentences = [evidence["sentence"]] if evidence.get("sentence") else []
    similar = (offer.roi or {}).get("similar") or {}
    return {
        "offer": {
            "title": f"{tier} for {offer.account.name}",
            "tier": tier,
            "url": (link := offer_url(tenant, offer)),
        },
        "price": {
            "amount": format_money(amount, currency),
            "interval": option.get("interval") or "month",
            "per_seat": False,
            "total": format_money(amount, currency),
        },
        "evidence": sentences,
        "similar_customers": similar.get("sentence", "") if isinstance(similar, dict) else "",
        "portal_url": link,
    }


def _trial_price(tenant: Tenant, trial: Trial, license_: License | None) -> dict[str, Any]:
    interval = license_.interval if license_ is not None else "month"
    seats = license_.seats if license_ is not None else 1
    owner = Q(tier__key=trial.target_key) if trial.target_kind == "tier" else Q(addon__key=trial.target_key)
    price = (
        Price.objects.for_tenant(tenant)
        .filter(owner, interval=interval, state=GovernanceState.PUBLISHED)
        .order_by("-version", "-id")
        .first()
    )
    if price is None:
        return {"amount": "", "interval": interval, "per_seat": False, "total": ""}
    total = price.amount * (seats if price.per_seat else 1)
    return {
        "amount": format_money(price.amount, price.currency),
        "interval": interval,
        "per_seat": price.per_seat,
        "total": format_money(total, price.currency),
    }


def trial_context(tenant: Tenant, trial: Trial, *, now: datetime) -> dict[str, Any]:
    progress = trial_progress(tenant, trial, now=now)
    license_ = License.objects.for_tenant(tenant).filter(account_id=trial.account_id).first()
    return {
        "trial": {
            "tier": target_name(tenant, trial),
            "started_on": _date(tenant, trial.starts_at),
            "ends_on": _date(tenant, trial.ends_at),
            "days_total": progress["days_total"],
        },
        "wins": [w["sentence"] for w in progress["wins"]],
        "price": _trial_price(tenant, trial, license_),
        "portal_url": portal_url(tenant, path=f"trials/{trial.pk}"),
    }


# --- what is due ----------------------------------------------------------------------------------------


def due_offer_messages(tenant: Tenant, *, now: datetime) -> list[Due]:
    """Offers that reached the customer in the last GRACE, and open ones whose reminder moment came."""
    due: list[Due] = []
    reminder_from = now - REMINDER_AFTER - GRACE
    offers = (
        Offer.objects.for_tenant(tenant)
        .filter(state__in=VISIBLE, sent_at__isnull=False, sent_at__lte=now, expires_at__gt=now)
        .filter(Q(sent_at__gt=now - GRACE) | Q(sent_at__gt=reminder_from, sent_at__lte=now - REMINDER_AFTER))
        .select_related("account")
        .order_by("id")
    )
    reminders: list[Offer] = []
    for offer in offers.iterator(chunk_size=500):
        build = cache(lambda o=offer: offer_context(tenant, o))
        if _in_window(offer.sent_at, now):
            due.append(Due(offer.account_id, "offer-sent", f"offer:{offer.pk}:sent", UPGRADE, build,
                           _template_variant(tenant, offer), _channel(tenant, offer)))  # fmt: skip
        elif _in_window(offer.sent_at + REMINDER_AFTER, now) and offer.expires_at > now + timedelta(days=1):
            reminders.append(offer)
    went_out = _admitted_causes(tenant, [f"offer:{o.pk}:sent" for o in reminders])
    for offer in reminders:
        if f"offer:{offer.pk}:sent" in went_out:  # never remind of an email the cap or consent stopped
            build = cache(lambda o=offer: offer_context(tenant, o))
            due.append(Due(offer.account_id, "offer-reminder", f"offer:{offer.pk}:reminder", UPGRADE, build,
                           _template_variant(tenant, offer), _channel(tenant, offer)))  # fmt: skip
    return due


def _admitted_causes(tenant: Tenant, causes: list[str]) -> set[str]:
    if not causes:
        return set()
    return set(
        messaging_selectors.list_messages(tenant)
        .filter(cause__in=causes, state__in=ADMITTED)
        .values_list("cause", flat=True)
    )


def _trial_build(tenant: Tenant, trial: Trial, *, now: datetime, what: str) -> Callable[[], dict[str, Any] | None]:
    def build() -> dict[str, Any] | None:
        if what == "midpoint":
            record_early_wins(tenant, trial=trial, now=now)
        context = trial_context(tenant, trial, now=now)
        if what == "midpoint" and not context["wins"]:
            return None  # nothing to tell yet: no message rather than a nudge
        return context

    return build


def due_trial_messages(tenant: Tenant, *, now: datetime) -> list[Due]:
    due: list[Due] = []
    # Only trials with a moment in its window: started or ending soon, halfway, or ended lately.
    trials = (
        Trial.objects.for_tenant(tenant)
        .filter(starts_at__lte=now)
        .filter(Q(state=TrialState.ACTIVE, ends_at__gt=now) | Q(state=TrialState.ENDED, ended_at__gt=now - GRACE))
        .select_related("account", "grant")
        .order_by("id")
    )
    for trial in trials.iterator(chunk_size=500):
        moments: list[tuple[str, str, str, datetime]] = []
        if trial.state == TrialState.ACTIVE:
            midpoint = trial.starts_at + (trial.ends_at - trial.starts_at) / 2
            moments += [
                ("trial-started", "started", TRANSACTIONAL, trial.starts_at),
                ("trial-midpoint", "midpoint", UPGRADE, midpoint),
                ("trial-ending", "ending", UPGRADE, trial.ends_at - TRIAL_ENDING_BEFORE),
            ]
        elif trial.ended_at is not None:
            moments.append(("trial-ended", "ended", TRANSACTIONAL, trial.ended_at))
        for key, what, category, at in moments:
            if _in_window(at, now):
                build = cache(_trial_build(tenant, trial, now=now, what=what))
                due.append(Due(trial.account_id, key, f"trial:{trial.pk}:{what}", category, build))
    return due


def _renewal_context(tenant: Tenant, license_: License, *, renews_at: datetime, offer: Offer | None) -> dict:
    amount = expected_renewal_total(license_, discount_percent=license_.renewal_discount_percent)
    context: dict[str, Any] = {
        "renewal": {
            "on": _date(tenant, renews_at),
            "tier": license_.tier.name,
            "amount": format_money(amount, license_.currency),
        },
        "proposal": {"title": "", "url": portal_url(tenant)},
        "evidence": [],
        "price": {"amount": "", "interval": license_.interval, "per_seat": False, "total": ""},
        "portal_url": portal_url(tenant),
    }
    if offer is not None:
        shown = offer_context(tenant, offer)
        context.update(
            proposal={"title": shown["offer"]["title"], "url": shown["offer"]["url"]},
            evidence=shown["evidence"],
            price=shown["price"],
        )
    return context


def due_renewal_messages(tenant: Tenant, *, now: datetime) -> list[Due]:
    """Annual (and multi-year) licences 90, 60 and 30 days before they renew (the commitment's end for a
    multi-year term), with the account's open offer as the upgrade proposal."""
    due: list[Due] = []
    horizon = now + timedelta(days=max(RENEWAL_STEPS))
    renewing = Q(commitment_ends_at__isnull=True, current_period_end__gt=now, current_period_end__lte=horizon) | Q(
        commitment_ends_at__gt=now, commitment_ends_at__lte=horizon
    )
    licences = (
        License.objects.for_tenant(tenant)
        .filter(renewing, interval="year", status=LicenseStatus.ACTIVE, cancel_at_period_end=False)
        .select_related("tier", "price", "account")
        .order_by("id")
    )
    candidates = []
    for license_ in licences.iterator(chunk_size=500):
        renews_at = license_.commitment_ends_at or license_.current_period_end
        steps = [d for d in RENEWAL_STEPS if _in_window(renews_at - timedelta(days=d), now, RENEWAL_GRACE)]
        if steps:
            candidates.append((license_, renews_at, steps))
    open_offers: dict[int, Offer] = {}
    for offer in (
        Offer.objects.for_tenant(tenant)
        .filter(account_id__in=[c[0].account_id for c in candidates], state__in=VISIBLE, expires_at__gt=now)
        .select_related("account")
        .order_by("created_at", "id")
    ):
        open_offers[offer.account_id] = offer  # the newest open offer per account
    for license_, renews_at, steps in candidates:
        offer = open_offers.get(license_.account_id)
        build = cache(lambda lic=license_, at=renews_at, o=offer: _renewal_context(tenant, lic, renews_at=at, offer=o))
        for days in steps:
            if offer is None and days != 30:
                continue  # 90 and 60 carry the upgrade proposal; without one, only the plain 30-day notice
            cause = f"renewal:{license_.pk}:{renews_at:%Y-%m-%d}:{days}"
            due.append(Due(license_.account_id, f"renewal-{days}", cause, UPGRADE, build))
    return due


def note_recent_declines(tenant: Tenant, *, now: datetime) -> int:
    """Tell messaging about declines it hasn't heard of yet (starts the quiet period). Returns how many."""
    count = 0
    declined = (
        Offer.objects.for_tenant(tenant)
        .filter(state=OfferState.DECLINED, closed_at__isnull=False)
        .filter(closed_at__gt=now - timedelta(days=messaging_selectors.get_settings(tenant).decline_quiet_days))
        .select_related("account")
        .order_by("closed_at")
    )
    quiet = dict(
        DeclineQuiet.objects.for_tenant(tenant)
        .filter(account_id__in=declined.values("account_id"))
        .values_list("account_id", "declined_at")
    )
    for offer in declined:
        if offer.account_id not in quiet or quiet[offer.account_id] < offer.closed_at:
            messaging.note_decline(tenant, account=offer.account, at=offer.closed_at)
            quiet[offer.account_id] = offer.closed_at
            count += 1
    return count


def due_decline_follow_ups(tenant: Tenant, *, now: datetime) -> list[Due]:
    due: list[Due] = []
    quiet_over = dict(
        DeclineQuiet.objects.for_tenant(tenant)
        .filter(quiet_until__lte=now, quiet_until__gt=now - GRACE)
        .values_list("account_id", "quiet_until")
    )
    if not quiet_over:
        return due
    offers = (
        Offer.objects.for_tenant(tenant)
        .filter(state=OfferState.DECLINED, account_id__in=list(quiet_over))
        .select_related("account")
        .order_by("account_id", "-closed_at")
    )
    seen: set[int] = set()
    for offer in offers:
        if offer.account_id in seen:
            continue
        seen.add(offer.account_id)  # the latest decline only
        open_again = Offer.objects.for_tenant(tenant).filter(account_id=offer.account_id, state__in=VISIBLE).exists()
        if not open_again:
            cause = f"offer:{offer.pk}:decline-follow-up"
            build = cache(lambda o=offer: offer_context(tenant, o))
            due.append(Due(offer.account_id, "decline-follow-up", cause, UPGRADE, build))
    return due


# --- sending --------------------------------------------------------------------------------------------


def _contacts(tenant: Tenant, account_ids: set[int]) -> dict[int, list[Contact]]:
    found: dict[int, list[Contact]] = {}
    for contact in Contact.objects.for_tenant(tenant).filter(account_id__in=account_ids).order_by("account_id", "id"):
        found.setdefault(contact.account_id, [])
        if len(found[contact.account_id]) < MAX_CONTACTS:
            found[contact.account_id].append(contact)
    return found


def send_due(tenant: Tenant, items: list[Due], *, now: datetime) -> int:
    """Hand each due message to messaging for each of the account's contacts. Returns the new messages
    admitted. What an earlier run already handed over is skipped before its context is built;
    messaging's unique key (contact, template, cause) is the guard when two runs overlap."""
    live: dict[str, bool] = {}
    contacts = _contacts(tenant, {d.account_id for d in items})
    done = set(
        messaging_selectors.list_messages(tenant)
        .filter(cause__in={d.cause for d in items})
        .values_list("contact_id", "template_key", "cause")
    )
    admitted = 0
    for item in items:
        todo = [c for c in contacts.get(item.account_id, []) if (c.pk, item.template_key, item.cause) not in done]
        if not todo:
            continue
        live_key = f"{item.template_key}:{item.channel}"
        if live_key not in live:
            live[live_key] = bool(
                messaging_selectors.live_templates(tenant, key=item.template_key, channel=item.channel)
            )
        if not live[live_key]:
            continue
        context = item.build()
        if context is None:
            continue
        for contact in todo:
            message = messaging.send_message(
                tenant,
                contact=contact,
                template_key=item.template_key,
                cause=item.cause,
                context=context,
                category=item.category,
                channel=item.channel,
                variant=item.variant,
                now=now,
            )
            admitted += message.state in ADMITTED
    return admitted


def send_due_for_tenant(tenant: Tenant, *, now: datetime | None = None) -> int:
    now = now or timezone.now()
    note_recent_declines(tenant, now=now)
    items = [
        *due_offer_messages(tenant, now=now),
        *due_trial_messages(tenant, now=now),
        *due_renewal_messages(tenant, now=now),
        *due_decline_follow_ups(tenant, now=now),
    ]
    return send_due(tenant, items, now=now)


def send_due_lifecycle_messages(*, now: datetime | None = None, tenant_id: int | None = None) -> int:
    """Beat: every tenant's due lifecycle messages (tenant by tenant, under row-level security)."""
    total = 0
    for tenant in each_tenant():
        if tenant_id is None or tenant.pk == tenant_id:
            total += send_due_for_tenant(tenant, now=now)
    return total
