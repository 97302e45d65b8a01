"""Portal pages for a CSM's proposals (issue 17): read and act through the offers layer's customer-document
registry (upgrades.offers.documents); the portal never imports the console."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.errors import TierwiseError
from billing.models import PlanChange
from upgrades.offers.documents import CustomerDocument, CustomerDocumentProvider, customer_document_provider
from upgrades.offers.models import DeclineReason
from upgrades.portal import selectors
from upgrades.portal.pages import Portal, _page, card_context, portal_view

KIND = "proposal"


def _provider() -> CustomerDocumentProvider:
    provider = customer_document_provider(KIND)
    if provider is None:
        raise Http404("No proposals here.")
    return provider


def _get(p: Portal, ref: str) -> CustomerDocument:
    doc = _provider().get(p.tenant, p.account, ref)
    if doc is None:
        raise Http404("No such proposal.")
    return doc


def _context(p: Portal, doc: CustomerDocument, **extra: Any) -> dict[str, Any]:
    def money(v: int | None) -> str:
        return selectors.money(v, doc.currency)

    options: list[dict[str, Any]] = [
        {
            "o": o,
            "total": money(o.total_amount),
            "rows": [
                {
                    "on": selectors.local_date(p.tenant, r.date),
                    "kind": "Due on acceptance" if r.kind == "today" else "Renewal invoice",
                    "list": money(r.list_amount),
                    "discount": money(r.discount_amount) if r.discount_amount else "",
                    "amount": money(r.amount),
                }
                for r in o.rows
            ],
            "due_now": money(o.rows[0].amount) if o.rows else "",
            "roi_value": money(o.roi.get("monthly_value")) if o.roi.get("monthly_value") is not None else "",
            "payback_days": o.roi.get("payback_days"),
        }
        for o in doc.options
    ]
    accepted = next((x for x in options if x["o"].key == doc.accepted_option), None)
    return {
        "doc": doc,
        "ref": doc.ref,
        "options": options,
        "open": doc.state == "open",
        "reasons": DeclineReason.choices,
        "accepted": accepted,
        "due_now": accepted["due_now"] if accepted else "",
        "settled": doc.state == "settled",
        "failed": doc.state == "failed",
        "charged": money(doc.charged_amount) if doc.charged_amount is not None else "",
        "shared_on": selectors.local_date(p.tenant, doc.shared_at),
        **extra,
    }


@portal_view
def proposal_page(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    return _page(request, "portal/proposal.html", _context(p, _get(p, ref)))


@portal_view
@require_POST
def proposal_accept(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    doc = _get(p, ref)
    option_key = request.POST.get("option", "")
    if option_key not in {o.key for o in doc.options}:
        return _page(request, "portal/proposal.html", _context(p, doc, error="Choose an option."), status=400)
    try:
        _provider().accept(p.tenant, p.account, ref, option_key, p.contact)
    except TierwiseError as exc:
        message = str(getattr(exc, "message", exc))
        return _page(request, "portal/proposal.html", _context(p, _get(p, ref), error=message), status=409)
    return redirect("portal:proposal-status", ref=ref)


@portal_view
def proposal_status(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    doc = _get(p, ref)
    if doc.state not in ("accepted", "settled", "failed"):
        return redirect("portal:proposal", ref=ref)
    ctx = _context(p, doc)
    ctx.update(card_context(p, failed_plan_change(p, doc), kind="proposal", ref=ref))
    template = "portal/_proposal_status.html" if request.headers.get("HX-Request") else "portal/proposal_status.html"
    return _page(request, template, ctx, stripe=ctx["card_entry"])


def failed_plan_change(p: Portal, doc: CustomerDocument) -> PlanChange | None:
    if doc.state != "failed" or doc.plan_change_id is None:
        return None
    return PlanChange.objects.for_tenant(p.tenant).filter(pk=doc.plan_change_id, account=p.account).first()


@portal_view
@require_POST
def proposal_retry(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    _get(p, ref)  # another account's proposal: 404
    try:
        _provider().retry_payment(p.tenant, p.account, ref, p.contact)
    except TierwiseError:
        pass  # the status page says where it stands
    return redirect("portal:proposal-status", ref=ref)


@portal_view
@require_http_methods(["GET", "POST"])
def proposal_decline(request: HttpRequest, ref: str) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    doc = _get(p, ref)
    ctx = _context(p, doc)
    if request.method == "POST":
        try:
            _provider().decline(
                p.tenant, p.account, ref, request.POST.get("reason", ""), request.POST.get("text", "")[:250], p.contact
            )
        except TierwiseError as exc:
            ctx["error"] = str(getattr(exc, "message", exc))
            ctx["errors"] = getattr(exc, "details", None) or {}
            return _page(request, "portal/proposal_decline.html", ctx, status=400)
        return _page(request, "portal/proposal_thanks.html", {})
    return _page(request, "portal/proposal_decline.html", ctx)
