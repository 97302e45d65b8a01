"""Portal pages: thin. Resolve the session (tokens), read (selectors), call the offers services, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.errors import TierwiseError
from billing.services.cards import card_entry
from catalog.money import to_major, to_minor
from upgrades.offers.models import DeclineReason, Offer, OfferState
from upgrades.offers.pricing import compute_roi
from upgrades.offers.services.acceptance import accept_offer, open_offer, retry_offer_payment
from upgrades.offers.services.declines import decline_offer
from upgrades.offers.services.trials import start_trial
from upgrades.offers.services.trials_wins import trial_next_steps, trial_progress
from upgrades.portal import selectors, services, tokens
from upgrades.portal.pages import ACTOR, Portal, _page, brand_of, card_context, portal_view

# ROI inputs that are money (minor units in the value model): shown and typed in major units.
MONEY_INPUTS = {"amount", "hourly_cost", "cost_per_incident"}
INPUT_LABELS = {
    "units_per_month": "Units a month",
    "hours_per_unit": "Hours per unit",
    "hourly_cost": "Cost of an hour",
    "amount": "Revenue at risk a month",
    "probability_percent": "Chance of losing it (%)",
    "per_month": "Incidents a month",
    "cost_per_incident": "Cost of one incident",
}


# --- links ------------------------------------------------------------------------------------


def _link_refused(request: HttpRequest, signed: str, result: tokens.Exchange) -> HttpResponse:
    can_refresh = result.link is not None and result.link.offer_id is not None
    return_url = result.link.return_url if result.link is not None else ""
    context = {"reason": result.status, "signed": signed, "can_refresh": can_refresh, "return_url": return_url}
    return _page(request, "portal/ended.html", context, status=410 if result.link else 404)


@require_http_methods(["GET", "POST"])
def open_link(request: HttpRequest, signed: str) -> HttpResponse:
    """GET only shows a button (mail scanners prefetch links; a GET must not use one up); the POST uses it."""
    if request.method == "GET":
        peeked = tokens.peek_link(signed)
        if peeked.status != "ok" or peeked.link is None:
            return _link_refused(request, signed, peeked)
        return _page(request, "portal/open.html", {"signed": signed, "brand": brand_of(peeked.link.tenant)})
    result = tokens.exchange_link(signed)
    if result.status != "ok" or result.link is None:
        return _link_refused(request, signed, result)
    link = result.link
    request.session.cycle_key()
    request.session[tokens.SESSION_KEY] = {"tenant": link.tenant_id, "link": link.pk}
    request.session.set_expiry(int(tokens.SESSION_TTL.total_seconds()))
    if link.offer is not None:
        return redirect("portal:offer", ref=selectors.ref_for("offer", link.offer))
    if link.landing.startswith("/portal/"):  # a document link (made by us, never from the request)
        return redirect(link.landing)
    return redirect("portal:home")


@require_POST
def fresh_link(request: HttpRequest, signed: str) -> HttpResponse:
    link = tokens.find_link(signed)
    sent = link is not None and link.offer_id is not None and tokens.send_fresh_link(link)
    return _page(request, "portal/fresh_sent.html", {"sent": sent}, status=200 if sent else 404)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return _page(request, "portal/ended.html", {"reason": "signed_out"})


# --- pages ------------------------------------------------------------------------------------


@portal_view
def home(request: HttpRequest) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    context = selectors.plan_page(p.tenant, p.account)
    context["card_entry"] = context.get("license") is not None and card_entry(p.tenant) is not None
    context["card_saved"] = request.GET.get("card") == "saved"
    return _page(request, "portal/plan.html", context)


@portal_view
def compare(request: HttpRequest) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    interval = "year" if request.GET.get("interval") == "year" else "month"
    context = selectors.compare_page(p.tenant, p.account, interval=interval)
    template = "portal/_compare_table.html" if request.headers.get("HX-Request") else "portal/compare.html"
    return _page(request, template, context)


def _offer_context(p: Portal, offer: Offer, **extra: Any) -> dict[str, Any]:
    currency = offer.currency
    quote = offer.quote or {}
    options = [o for o in offer.options or [] if isinstance(o, dict)]
    return {
        "offer": offer,
        "ref": selectors.ref_for("offer", offer),
        "options": [
            {**o, "amount_text": selectors.money(o.get("amount"), currency), "saving_text": _saving(o, currency)}
            for o in options
        ],
        "quote": quote,
        "lines": [
            {**line, "amount_text": selectors.money(line.get("amount"), currency)} for line in quote.get("lines") or []
        ],
        "due_now": selectors.money(quote.get("amount_due_now"), currency),
        "renewal": selectors.money(quote.get("next_renewal_amount"), currency),
        "renewal_on": selectors.local_date(p.tenant, quote.get("next_renewal_at")),
        "expires_on": selectors.local_date(p.tenant, offer.expires_at),
        "roi": offer.roi or {},
        "money": lambda v: selectors.money(v, currency),
        "reasons": DeclineReason.choices,
        "open": offer.state in selectors.OPEN_STATES and offer.expires_at > timezone.now(),
        "plan_change": offer.plan_change,
        **extra,
    }


def _saving(option: dict[str, Any], currency: str) -> str:
    saving = option.get("saving")
    if not isinstance(saving, dict):
        return ""
    return f"Save {selectors.money(saving.get('amount'), currency)} ({float(saving.get('percent') or 0):.0f} %) a year"


def _roi_view(p: Portal, offer: Offer, roi: dict[str, Any]) -> dict[str, Any]:
    currency = offer.currency
    drivers = []
    for driver in roi.get("drivers") or []:
        fields = []
        for name, value in (driver.get("inputs") or {}).items():
            if name == "meter":
                continue
            money = name in MONEY_INPUTS
            shown = to_major(int(value), currency) if money and str(value).lstrip("-").isdigit() else value
            label = INPUT_LABELS.get(name, name.replace("_", " ").capitalize())
            fields.append({"name": name, "label": f"{label} ({currency})" if money else label, "value": shown})
        drivers.append({"key": driver.get("key"), "label": driver.get("label"), "formula": driver.get("formula"),
                        "fields": fields})  # fmt: skip
    return {
        "monthly_value": selectors.money(roi.get("monthly_value"), currency),
        "monthly_cost": selectors.money(roi.get("monthly_cost_increase"), currency),
        "payback_days": roi.get("payback_days"),
        "drivers": drivers,
        "assumptions": roi.get("assumptions") or [],
        "similar": (roi.get("similar") or {}).get("sentence", "") if isinstance(roi.get("similar"), dict) else "",
    }


def _roi_inputs(post: Any, currency: str) -> dict[str, dict[str, Any]]:
    """`roi__<driver>__<input>` fields; money typed in major units becomes minor units (else left for the
    value model's validation to explain)."""
    inputs: dict[str, dict[str, Any]] = {}
    for name, value in post.items():
        parts = name.split("__")
        if len(parts) != 3 or parts[0] != "roi" or not value.strip():
            continue
        text: Any = value.strip()
        if parts[2] in MONEY_INPUTS:
            try:
                text = to_minor(text.replace(",", ""), currency)
            except (ValueError, ArithmeticError, TypeError):
                pass
        inputs.setdefault(parts[1], {})[parts[2]] = text
    return inputs


@portal_view
def offer_page(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    offer = open_offer(p.tenant, offer=offer, actor=ACTOR)
    ctx = _offer_context(p, offer, roi_view=_roi_view(p, offer, offer.roi or {}))
    return _page(request, "portal/offer.html", ctx)


@portal_view
@require_POST
def offer_roi(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    option = next((o for o in offer.options if o.get("key") == offer.recommended_option), offer.options[0])
    inputs = _roi_inputs(request.POST, offer.currency)
    error = ""
    try:
        roi = compute_roi(
            p.tenant,
            account=p.account,
            settings=offer.settings_version,
            evidence=offer.evidence,
            option={**option, "currency": offer.currency},
            inputs=inputs,
        )
    except TierwiseError as exc:
        roi, error = offer.roi or {}, exc.message if hasattr(exc, "message") else str(exc)
    return _page(request, "portal/_roi.html", {"ref": ref, "roi_view": _roi_view(p, offer, roi), "error": error})


@portal_view
@require_POST
def offer_accept(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    option_key = request.POST.get("option", "")
    if option_key not in {o.get("key") for o in offer.options}:
        ctx = _offer_context(p, offer, roi_view=_roi_view(p, offer, offer.roi or {}), error="Choose an option.")
        return _page(request, "portal/offer.html", ctx, status=400)
    try:
        accept_offer(p.tenant, offer=offer, option_key=option_key, actor=ACTOR)
    except TierwiseError as exc:
        offer.refresh_from_db()
        message = str(getattr(exc, "message", exc))
        ctx = _offer_context(p, offer, roi_view=_roi_view(p, offer, offer.roi or {}), error=message)
        return _page(request, "portal/offer.html", ctx, status=409)
    return redirect("portal:offer-status", ref=ref)


@portal_view
def offer_status(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    if offer.state not in (OfferState.ACCEPTED, OfferState.FULFILLED):
        return redirect("portal:offer", ref=ref)
    ctx = _offer_context(p, offer)
    pc = offer.plan_change
    ctx["settled"] = offer.state == OfferState.FULFILLED
    ctx["failed"] = selectors.payment_failed(offer)
    ctx["charged"] = selectors.money(offer.amount_charged, offer.currency) if offer.amount_charged is not None else ""
    ctx.update(card_context(p, pc if ctx["failed"] else None, kind="offer", ref=ref))
    template = "portal/_status.html" if request.headers.get("HX-Request") else "portal/status.html"
    return _page(request, template, ctx, stripe=ctx["card_entry"])


@portal_view
@require_POST
def offer_retry(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    try:
        retry_offer_payment(p.tenant, offer=offer, actor=ACTOR)
    except TierwiseError:
        pass  # the status page says where it stands
    return redirect("portal:offer-status", ref=ref)


@portal_view
@require_http_methods(["GET", "POST"])
def offer_decline(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    ctx = _offer_context(p, offer)
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        try:
            decline_offer(
                p.tenant,
                offer=offer,
                reason_code=reason,
                text=request.POST.get("text", ""),
                actor=ACTOR,
                contact=p.contact,
                source="portal",
            )
        except TierwiseError as exc:
            ctx["error"] = str(getattr(exc, "message", exc))
            ctx["errors"] = getattr(exc, "details", None) or {}
            return _page(request, "portal/decline.html", ctx, status=400)
        return _page(request, "portal/thanks.html", {"what": "decline", "ref": ref})
    return _page(request, "portal/decline.html", ctx)


@portal_view
@require_http_methods(["GET", "POST"])
def talk(request: HttpRequest) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    ref = request.GET.get("offer") or request.POST.get("offer") or ""
    offer = selectors.get_offer(p.tenant, p.account, ref) if ref else None
    if request.method == "POST":
        try:
            services.request_person(
                p.tenant, account=p.account, contact=p.contact, offer=offer, text=request.POST.get("text", "")
            )
        except TierwiseError as exc:
            return _page(request, "portal/talk.html", {"ref": ref, "offer": offer, "errors": exc.details}, status=400)
        return _page(request, "portal/thanks.html", {"what": "talk", "ref": ref})
    return _page(request, "portal/talk.html", {"ref": ref, "offer": offer})


@portal_view
@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    ref = request.GET.get("offer") or request.POST.get("offer") or ""
    offer = selectors.get_offer(p.tenant, p.account, ref) if ref else None
    scale = [1, 2, 3, 4, 5]
    if request.method == "POST":
        try:
            services.record_survey(
                p.tenant,
                account=p.account,
                contact=p.contact,
                offer=offer,
                satisfaction=request.POST.get("satisfaction"),
                perceived_value=request.POST.get("perceived_value"),
                friction=request.POST.get("friction"),
                text=request.POST.get("text", ""),
            )
        except TierwiseError as exc:
            ctx = {"ref": ref, "scale": scale, "errors": exc.details}
            return _page(request, "portal/feedback.html", ctx, status=400)
        return _page(request, "portal/thanks.html", {"what": "feedback", "ref": ref})
    return _page(request, "portal/feedback.html", {"ref": ref, "scale": scale})


@portal_view
@require_POST
def trial_start(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    offer = selectors.get_offer(p.tenant, p.account, ref)
    try:
        trial = start_trial(
            p.tenant,
            account=p.account,
            target_kind=offer.target_kind,
            target_key=offer.target_key,
            actor=ACTOR,
            source="portal",
            offer=offer,
        )
    except TierwiseError as exc:
        ctx = _offer_context(p, offer, roi_view=_roi_view(p, offer, offer.roi or {}), error=str(exc))
        return _page(request, "portal/offer.html", ctx, status=409)
    return redirect("portal:trial", ref=selectors.ref_for("trial", trial))


@portal_view
def trial_page(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    trial = selectors.get_trial(p.tenant, p.account, ref)
    progress = trial_progress(p.tenant, trial)
    steps = trial_next_steps(p.tenant, trial)
    offer_ref = ""
    if trial.offer_id:
        offer = Offer.objects.for_tenant(p.tenant).filter(pk=trial.offer_id, account=p.account).first()
        offer_ref = selectors.ref_for("offer", offer) if offer else ""
    ctx = {
        "trial": trial,
        "progress": progress,
        "steps": steps,
        "offer_ref": offer_ref,
        "ends_on": selectors.local_date(p.tenant, trial.ends_at),
    }
    return _page(request, "portal/trial.html", ctx)
