"""Offer funnel, declines by reason, trial conversion: counts for one tenant (the current tenant context)."""

from __future__ import annotations

from django.db.models import Count

from accounts.models import Tenant
from upgrades.offers.models import DeclineReason, Feedback, FeedbackKind, Offer, OfferEvent, Trial, TrialState

FUNNEL_STEPS = ("sent", "viewed", "accepted", "fulfilled")


def offer_funnel(tenant: Tenant) -> list[dict]:
    """[{step, offers}] built -> sent -> viewed -> accepted -> fulfilled (distinct offers reaching each step)."""
    built = Offer.objects.filter(tenant=tenant).count()
    reached = dict(
        OfferEvent.objects.filter(tenant=tenant, to_state__in=FUNNEL_STEPS)
        .values_list("to_state")
        .annotate(n=Count("offer_id", distinct=True))
    )
    return [{"step": "built", "offers": built}, *({"step": s, "offers": reached.get(s, 0)} for s in FUNNEL_STEPS)]


def declines_by_reason(tenant: Tenant) -> list[dict]:
    counts = dict(
        Feedback.objects.filter(tenant=tenant, kind=FeedbackKind.DECLINE)
        .values_list("reason_code")
        .annotate(n=Count("id"))
    )
    return [{"reason": label, "declines": counts.get(code, 0)} for code, label in DeclineReason.choices]


def trial_conversion(tenant: Tenant) -> dict:
    counts = dict(Trial.objects.filter(tenant=tenant).values_list("state").annotate(n=Count("id")))
    converted = counts.get(TrialState.CONVERTED, 0)
    finished = converted + counts.get(TrialState.ENDED, 0) + counts.get(TrialState.CANCELLED, 0)
    return {
        "in_progress": counts.get(TrialState.ACTIVE, 0),
        "converted": converted,
        "finished": finished,
        "rate": round(converted / finished, 4) if finished else None,
    }


def time_to_upgrade(tenant: Tenant) -> dict:
    """Days from a signal firing to the upgrade its offer fulfilled: count, median and 75th percentile."""
    pairs = Offer.objects.filter(tenant=tenant, signal__isnull=False, fulfilled_at__isnull=False).values_list(
        "fulfilled_at", "signal__created_at"
    )
    days = sorted((done - fired).total_seconds() / 86400 for done, fired in pairs if done and fired)
    if not days:
        return {"upgrades": 0, "median_days": None, "p75_days": None}

    def quantile(q: float) -> float:
        return round(days[min(len(days) - 1, int(q * (len(days) - 1) + 0.5))], 1)

    return {"upgrades": len(days), "median_days": quantile(0.5), "p75_days": quantile(0.75)}
