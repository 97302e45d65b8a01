"""What the offer and trial admin pages show, read from the offer's JSON snapshots into plain rows:
money through the one formatter (catalog.money), ISO timestamps back into aware datetimes (the
templates format them in the one date style)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import Membership, Role, Tenant, User
from catalog.money import format_money
from catalog.selectors import get_discount_policy
from upgrades.offers.models import Offer, Trial
from upgrades.offers.services.trials_wins import trial_progress

MONEY_KEYS = {"monthly_value", "monthly_cost_increase", "annual_value", "net_value", "amount", "value", "total"}
ROI_LABELS = {
    "monthly_value": "Value a month",
    "monthly_cost_increase": "Extra cost a month",
    "payback_days": "Pays back in (days)",
    "roi_ratio": "Return on the extra cost (×)",
}


def when(value: Any) -> datetime | date | None:
    """An ISO timestamp or date from a JSON snapshot -> datetime/date (None when absent or unreadable)."""
    if isinstance(value, datetime | date) or value is None:
        return value
    text = str(value)
    return parse_datetime(text) or parse_date(text[:10])


def money(amount: Any, currency: str) -> str:
    if isinstance(amount, bool) or not isinstance(amount, int):
        return "" if amount is None else str(amount)
    return format_money(amount, currency)


def percent(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{number.quantize(Decimal('0.01')):f}".rstrip("0").rstrip(".")
    return f"{text} %"


def option_label(option: dict[str, Any], currency: str) -> str:
    interval = {"month": "a month", "year": "a year"}.get(str(option.get("interval")), str(option.get("interval", "")))
    years = option.get("term_years") or 1
    term = f", {years}-year term" if years and int(years) > 1 else ""
    name = option.get("tier_name") or option.get("tier") or option.get("key")
    return f"{name}: {money(option.get('amount'), currency)} {interval}{term}"


def recommended_amount(offer: Offer) -> str:
    for option in offer.options or []:
        if option.get("key") == offer.recommended_option:
            return option_label(option, offer.currency)
    return ""


def discount_short(offer: Offer) -> str:
    d = offer.discount or {}
    if not d or not d.get("percent") or Decimal(str(d.get("percent"))) == 0:
        return ""
    text = percent(d["percent"])
    if offer.discount_approval_needed and offer.discount_approved_at is None:
        text += " (awaiting approval)"
    return text


def may_approve_discount(tenant: Tenant, user: User, membership: Membership | None) -> bool:
    """The DiscountPolicy's exception approver role or the owner (the service checks the same)."""
    if user.is_superuser:
        return True
    if membership is None:
        return False
    policy = get_discount_policy(tenant)
    return membership.role in {Role.OWNER, policy.exception_approver_role if policy else Role.OWNER}


def _option_row(option: dict[str, Any], offer: Offer) -> dict[str, Any]:
    c = offer.currency
    saving = option.get("saving") or {}
    discount = option.get("discount") or {}
    return {
        "key": option.get("key", ""),
        "name": option.get("label") or option.get("tier_name") or option.get("tier") or option.get("key"),
        "lines": [
            f"{line.get('name')}{' × ' + str(line.get('quantity')) if line.get('per_seat') else ''}: "
            f"{money(line.get('amount'), c)}"
            for line in option.get("lines") or []
            if isinstance(line, dict)
        ],
        "changes": _changes(option.get("changes") or {}),
        "interval": option.get("interval", ""),
        "term_years": option.get("term_years") or 1,
        "seats": option.get("seats"),
        "addons": ", ".join(option.get("addons") or []),
        "amount": money(option.get("amount"), c),
        "list_amount": money(option.get("list_amount"), c) if option.get("list_amount") != option.get("amount") else "",
        "monthly_equivalent": money(option.get("monthly_equivalent"), c),
        "saving": (
            f"saves {money(saving.get('amount'), c)} ({percent(saving.get('percent'))}) versus "
            f"{saving.get('versus', 'monthly')}"
        )
        if saving
        else "",  # fmt: skip
        "discount": f"{percent(discount.get('percent'))} off: {discount.get('explanation', '')}" if discount else "",
        "recommended": option.get("key") == offer.recommended_option,
        "accepted": option.get("key") == offer.accepted_option,
    }


def _changes(changes: dict[str, Any]) -> str:
    parts = []
    if changes.get("gained"):
        parts.append("gains " + ", ".join(str(f) for f in changes["gained"]))
    if changes.get("lost"):
        parts.append("loses " + ", ".join(str(f) for f in changes["lost"]))
    for limit in changes.get("limits") or []:
        to = "unlimited" if limit.get("to") is None else _number(limit.get("to"))
        parts.append(f"{limit.get('feature')} {_number(limit.get('from'))} → {to}")
    return "; ".join(parts)


def _roi_rows(roi: dict[str, Any], currency: str) -> list[tuple[str, str]]:
    rows = []
    for key, value in roi.items():
        if key in ("sentence", "drivers", "inputs", "assumptions", "currency") or isinstance(value, dict | list):
            continue
        if value is None or value == "":
            continue
        label = ROI_LABELS.get(key, key.replace("_", " ").capitalize())
        rows.append((label, money(value, currency) if key in MONEY_KEYS and isinstance(value, int) else str(value)))
    return rows


def _roi_drivers(roi: dict[str, Any], currency: str) -> list[dict[str, str]]:
    out = []
    for d in roi.get("drivers") or []:
        if not isinstance(d, dict):
            continue
        amount = next((d[k] for k in ("value", "amount", "monthly_value", "annual_value") if isinstance(d.get(k), int)),
                      None)  # fmt: skip
        out.append({"label": str(d.get("label") or d.get("kind") or ""), "amount": money(amount, currency),
                    "sentence": str(d.get("formula") or d.get("sentence") or d.get("explanation") or "")})  # fmt: skip
    return out


def _number(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    try:
        return f"{Decimal(str(value)).quantize(Decimal(1)):,}" if value not in (None, "") else ""
    except (InvalidOperation, ValueError):
        return str(value)


def _meter_row(m: dict[str, Any]) -> dict[str, Any]:
    return {**m, "used": _number(m.get("used")), "limit": None if m.get("limit") is None else _number(m["limit"]),
            "projected": _number(m.get("projected"))}  # fmt: skip


def offer_view(offer: Offer) -> dict[str, Any]:
    c = offer.currency
    evidence = offer.evidence or {}
    quote = offer.quote or {}
    anchor = offer.anchor or None
    discount = offer.discount or None
    holding = offer.holding or {}
    roi = offer.roi or None
    return {
        "sentence": evidence.get("sentence", ""),
        "model": evidence.get("model") or {},
        "model_inputs": [
            (str(k).replace("_", " "), when(v) if k == "as_of" else v)
            for k, v in ((evidence.get("model") or {}).get("inputs") or {}).items()
            if not isinstance(v, dict | list)
        ],
        "meters": [_meter_row(m) for m in evidence.get("meters") or [] if isinstance(m, dict)],
        "holding": holding,
        "holding_price": money(holding.get("monthly_amount"), c),
        "options": [_option_row(o, offer) for o in offer.options or [] if isinstance(o, dict)],
        "anchor": _option_row(anchor, offer) if isinstance(anchor, dict) else None,
        "anchor_note": (anchor or {}).get("note") or (anchor or {}).get("explanation") or "",
        "discount": discount,
        "discount_percent": percent(discount.get("percent")) if discount else "",
        "discount_amount": money(discount.get("amount"), c) if discount else "",
        "quote": quote,
        "quote_lines": [
            {
                "description": line.get("description", ""),
                "amount": money(line.get("amount"), c),
                "period_start": when(line.get("period_start")),
                "period_end": when(line.get("period_end")),
            }
            for line in quote.get("lines") or []
            if isinstance(line, dict)
        ],  # fmt: skip
        "amount_due_now": money(quote.get("amount_due_now"), c),
        "next_renewal_amount": money(quote.get("next_renewal_amount"), c),
        "next_renewal_at": when(quote.get("next_renewal_at")),
        "quoted_at": when(quote.get("quoted_at")),
        "roi": roi,
        "roi_rows": _roi_rows(roi, c) if isinstance(roi, dict) else [],
        "roi_drivers": _roi_drivers(roi, c) if isinstance(roi, dict) else [],
        "roi_assumptions": [str(a) for a in (roi or {}).get("assumptions") or []] if isinstance(roi, dict) else [],
        "events": list(offer.events.all()),
        "feedback": list(offer.feedback.all()),
        "trials": list(offer.trials.all()),
        "amount_charged": money(offer.amount_charged, c),
    }


def trial_view(trial: Trial) -> dict[str, Any]:
    progress = trial_progress(trial.tenant, trial)
    unlocked = ", ".join(f["name"] for f in progress["unlocked_features"]) or "no new features (higher limits only)"
    return {"progress": progress, "wins": progress["wins"], "unlocked": unlocked}
