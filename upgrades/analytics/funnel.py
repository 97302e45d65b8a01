"""Offer funnel, declines by reason, trial conversion: counts for one tenant (the current tenant context)."""

from __future__ import annotations

from django.db.models import Count, Sum

from accounts.models import Segment, Tenant
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


SURVEY_SCORES = ("satisfaction", "perceived_value", "friction")


def feedback_by_segment(tenant: Tenant) -> list[dict]:
    """Declines (by reason) and survey answers (mean 1..5 scores) per segment and the packaging they answered.

    Packaging is the tier/add-on/bundle of the offer the feedback answered ("none" for feedback on no offer).
    """
    segment_labels = dict(Segment.choices)
    reason_labels = dict(DeclineReason.choices)
    grouped = (
        Feedback.objects.filter(tenant=tenant, kind__in=(FeedbackKind.DECLINE, FeedbackKind.SURVEY))
        .values_list("account__segment", "offer__target_kind", "offer__target_key", "kind", "reason_code")
        .annotate(
            n=Count("id"),
            **{f"{s}_sum": Sum(s) for s in SURVEY_SCORES},
            **{f"{s}_n": Count(s) for s in SURVEY_SCORES},
        )
        .order_by()
    )
    rows: dict[tuple[str, str], dict] = {}
    for segment, target_kind, target_key, kind, reason, n, *scores in grouped:
        packaging = f"{target_kind}: {target_key}" if target_kind else "none"
        key = (segment_labels.get(segment, "none"), packaging)
        row = rows.setdefault(
            key,
            {"segment": key[0], "packaging": packaging, "declines": 0, "surveys": 0, "reasons": {}, "scores": {}},
        )
        if kind == FeedbackKind.DECLINE:
            row["declines"] += n
            if reason:
                row["reasons"][reason] = row["reasons"].get(reason, 0) + n
        else:
            row["surveys"] += n
        sums, counts = scores[: len(SURVEY_SCORES)], scores[len(SURVEY_SCORES) :]
        for name, total, count in zip(SURVEY_SCORES, sums, counts, strict=True):
            acc = row["scores"].setdefault(name, [0, 0])
            acc[0] += total or 0
            acc[1] += count
    out = []
    for key in sorted(rows):
        row = rows.pop(key)
        reasons = sorted(row.pop("reasons").items(), key=lambda item: (-item[1], item[0]))
        row["reasons"] = "; ".join(f"{reason_labels.get(code, code)} {n}" for code, n in reasons)
        for name, (total, count) in row.pop("scores").items():
            row[name] = round(total / count, 1) if count else None
        out.append(row)
    return out
