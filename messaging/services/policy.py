"""Whether a message may go now: the cap, consent, a decline's quiet period, bounces, quiet hours.

Invariant: the cap (upgrade messages per contact and per account in a rolling window, email, in-app
and CSM outreach together) holds under concurrent workers because every admission for an account
runs under one lock per account (`lock_account`: a PostgreSQL advisory transaction lock; SQLite
serialises writers anyway) and counts the rows that hold a slot (`counted_at`) inside that lock.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections import Counter
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count

from accounts.models import Contact, Tenant
from messaging.models import (
    Category,
    Channel,
    ContactPreference,
    DeclineQuiet,
    EmailSuppression,
    Message,
    MessageState,
    MessagingSettings,
    SuppressedReason,
)


def lock_account(tenant: Tenant | int, account_id: int) -> None:
    """Serialise admissions for one account until the transaction ends (call inside `atomic`)."""
    if connection.vendor != "postgresql":
        return
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"tw-msg-cap:{tenant_id}:{account_id}"]
        )


def quiet_hours_release(
    now: datetime.datetime, *, time_zone: str, start: datetime.time, end: datetime.time
) -> datetime.datetime | None:
    """None when `now` is outside the quiet hours in `time_zone`; else the UTC instant they end.

    The window [start, end) is wall-clock time in the contact's zone and may wrap midnight
    (20:00-08:00). The end is found on the local calendar, so a DST change inside the night moves the
    UTC instant, not the local hour; an end inside a spring-forward gap resolves to the first valid
    instant after it.
    """
    if start == end:
        return None
    zone = zoneinfo.ZoneInfo(time_zone)
    local = now.astimezone(zone)
    t = local.timetz().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_date = local.date()
    else:  # wraps midnight
        inside = t >= start or t < end
        end_date = local.date() + datetime.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    naive = datetime.datetime.combine(end_date, end)
    candidate = naive.replace(tzinfo=zone)
    utc = candidate.astimezone(datetime.UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:  # in a gap: the wall clock skips `end`
        utc = _first_instant_at_or_after(naive, zone)
    return max(utc, now.astimezone(datetime.UTC))


def _first_instant_at_or_after(naive: datetime.datetime, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The first UTC instant whose wall clock in `zone` reads `naive` or later (for a time in a DST gap)."""
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(datetime.UTC)  # the offset after the change: before it
    hi = naive.replace(tzinfo=zone, fold=0).astimezone(datetime.UTC)  # the offset before the change: after it
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > datetime.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) + (datetime.timedelta(seconds=1) if hi.microsecond else datetime.timedelta())


@dataclass(frozen=True)
class Decision:
    state: str
    reason: str = ""
    due_at: datetime.datetime | None = None
    counted: bool = False


def preference_for(tenant: Tenant, contact: Contact) -> ContactPreference:
    found = ContactPreference.objects.for_tenant(tenant).filter(contact=contact).first()
    return found if found is not None else ContactPreference(tenant=tenant, contact=contact)


@dataclass
class AccountFacts:
    """What the decision reads about one account and some of its contacts, fetched in 4 queries.

    Counts are of the cap's window; `admit` keeps them current as a batch admits messages, so a batch
    decides exactly as the same sends one by one would (under the same lock)."""

    preferences: dict[int, ContactPreference]
    suppressions: dict[str, str]  # lower-cased address -> 'bounced' | 'complained'
    decline_quiet: bool
    used_by_contact: Counter
    used_account: int

    def preference(self, tenant: Tenant, contact: Contact) -> ContactPreference:
        return self.preferences.get(contact.pk) or ContactPreference(tenant=tenant, contact=contact)

    def admit(self, contact_id: int) -> None:
        self.used_by_contact[contact_id] += 1
        self.used_account += 1


def gather_facts(
    tenant: Tenant, *, account_id: int, contacts: list[Contact], prefs: MessagingSettings, now: datetime.datetime
) -> AccountFacts:
    """For upgrade decisions call under `lock_account` (the counts must not move before the insert)."""
    since = now - datetime.timedelta(days=prefs.cap_window_days)
    used = Counter(
        dict(
            Message.objects.for_tenant(tenant)
            .filter(account_id=account_id, category=Category.UPGRADE, counted_at__gt=since)
            .values_list("contact_id")
            .order_by()
            .annotate(n=Count("id"))
        )
    )
    emails = {c.email.lower() for c in contacts}
    return AccountFacts(
        preferences={
            p.contact_id: p
            for p in ContactPreference.objects.for_tenant(tenant).filter(contact_id__in=[c.pk for c in contacts])
        },
        suppressions=dict(
            EmailSuppression.objects.for_tenant(tenant).filter(email__in=emails).values_list("email", "reason")
        ),
        decline_quiet=DeclineQuiet.objects.for_tenant(tenant)
        .filter(account_id=account_id, quiet_until__gt=now)
        .exists(),
        used_by_contact=used,
        used_account=sum(used.values()),
    )


def consent_from(
    facts: AccountFacts, *, tenant: Tenant, contact: Contact, channel: str, category: str, prefs: MessagingSettings
) -> str:
    """Why the contact may not get this message regardless of the cap, or ''. Bounces stop everything."""
    if channel == Channel.EMAIL:
        bounce = facts.suppressions.get(contact.email.lower(), "")
        if bounce:
            return SuppressedReason.BOUNCED if bounce == "bounced" else SuppressedReason.COMPLAINED
    if category == Category.TRANSACTIONAL:
        return ""
    preference = facts.preference(tenant, contact)
    if preference.unsubscribed_at is not None and channel != Channel.CSM:
        return SuppressedReason.UNSUBSCRIBED
    if (channel == Channel.EMAIL and not preference.upgrade_email) or (
        channel == Channel.IN_APP and not preference.in_app
    ):
        return SuppressedReason.OPTED_OUT
    if prefs.require_marketing_consent and channel == Channel.EMAIL and not contact.marketing_consent:
        return SuppressedReason.NO_CONSENT
    if channel != Channel.CSM and facts.decline_quiet:
        return SuppressedReason.DECLINE_QUIET
    return ""


def decide_with(
    facts: AccountFacts, *, tenant: Tenant, contact: Contact, channel: str, category: str,
    prefs: MessagingSettings, now: datetime.datetime,
) -> Decision:  # fmt: skip
    """The decision recorded on the Message; a decision that takes a cap slot updates `facts`."""
    reason = consent_from(facts, tenant=tenant, contact=contact, channel=channel, category=category, prefs=prefs)
    if reason:
        return Decision(MessageState.SUPPRESSED, reason)
    upgrade = category == Category.UPGRADE
    # A prompt takes its slot when shown (messaging.services.prompts); an email or outreach when admitted.
    counts_now = upgrade and channel in (Channel.EMAIL, Channel.CSM)
    if counts_now:
        if facts.used_by_contact[contact.pk] >= prefs.cap_count:
            return Decision(MessageState.SUPPRESSED, SuppressedReason.CONTACT_CAP)
        if facts.used_account >= prefs.account_cap_count:
            return Decision(MessageState.SUPPRESSED, SuppressedReason.ACCOUNT_CAP)
        facts.admit(contact.pk)
    if channel == Channel.EMAIL and upgrade:
        zone = facts.preference(tenant, contact).time_zone or tenant.time_zone or "UTC"
        release = quiet_hours_release(now, time_zone=zone, start=prefs.quiet_hours_start, end=prefs.quiet_hours_end)
        if release is not None:
            return Decision(MessageState.HELD, due_at=release, counted=counts_now)
    if channel == Channel.CSM:
        return Decision(MessageState.SENT, counted=counts_now)
    return Decision(MessageState.QUEUED, due_at=now, counted=counts_now)


def decide(
    tenant: Tenant, *, contact: Contact, channel: str, category: str, prefs: MessagingSettings, now: datetime.datetime
) -> Decision:
    """One contact's decision. For upgrade messages call under `lock_account`."""
    facts = gather_facts(tenant, account_id=contact.account_id, contacts=[contact], prefs=prefs, now=now)
    return decide_with(facts, tenant=tenant, contact=contact, channel=channel, category=category, prefs=prefs, now=now)


def consent_reason(
    tenant: Tenant, *, contact: Contact, channel: str, category: str, prefs: MessagingSettings, now: datetime.datetime
) -> str:
    facts = gather_facts(tenant, account_id=contact.account_id, contacts=[contact], prefs=prefs, now=now)
    return consent_from(facts, tenant=tenant, contact=contact, channel=channel, category=category, prefs=prefs)
