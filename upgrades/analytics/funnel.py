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
