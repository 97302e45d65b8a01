"""Proposal pages: the builder (options with their price path before saving), the proposal with approval,
sharing and withdrawal, and its document (HTML, PDF)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from accounts.errors import TierwiseError
from catalog.models import AddOn, GovernanceState, Tier
from upgrades.console import document, forms, selectors
from upgrades.console.access import READ, WORK, console_view
from upgrades.console.models import ProposalState
from upgrades.console.services import proposal_emails as email_services
from upgrades.console.services import proposals as services
from upgrades.console.services.holdout import HELD_OUT_TEXT, is_held_out
from upgrades.console.services.options import OptionRequest
from upgrades.console.views import POST, base_context
from upgrades.offers.documents import DOCUMENT_LINK_TTL


def _builder_context(request: HttpRequest, account, form) -> dict:
    tenant = request.tenant  # type: ignore[attr-defined]
    return base_context(
        request,
        account=account,
        form=form,
        tiers=Tier.objects.for_tenant(tenant).filter(state=GovernanceState.PUBLISHED).order_by("name"),
        addons=AddOn.objects.for_tenant(tenant).filter(state=GovernanceState.PUBLISHED).order_by("name"),
        objections=selectors.objections(tenant),
        held_out=is_held_out(tenant, account.pk),
        held_out_text=HELD_OUT_TEXT,
    )


@console_view(WORK, methods=("GET", "POST"))
def proposal_new(request: HttpRequest, account_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    if request.method == "GET":
        initial = {"kind": request.GET.get("kind", "upgrade"), "interval": "year", "seats": 1, "term_years": 1}
        from billing.selectors import get_license_for_account

        license = get_license_for_account(tenant, account)
        if license is not None:
            initial["seats"] = license.seats
        return TemplateResponse(
            request,
            "console/proposal_new.html",
            _builder_context(request, account, forms.ProposalForm(initial=initial)),
        )
    form = forms.ProposalForm(request.POST)
    if not form.is_valid():
        return TemplateResponse(
            request, "console/proposal_new.html", _builder_context(request, account, form), status=400
        )
    data = form.cleaned_data
    addons = tuple(k.strip() for k in (data["addons"] or "").split(",") if k.strip())
    options = [
        OptionRequest(
            tier=data["tier"],
            interval=data["interval"],
            seats=data["seats"],
            term_years=data["term_years"],
            addons=addons,
            year_percents=data["year_percents"],
        )
    ]
    if data.get("second_term_years"):
        options.append(
            OptionRequest(
                tier=data["tier"],
                interval="year",
                seats=data["seats"],
                term_years=data["second_term_years"],
                addons=addons,
            )
        )
    try:
        proposal = services.build_proposal(
            tenant,
            account=account,
            actor=request.user,
            options=options,
            title=data["title"],
            intro=data["intro"],
            kind=data["kind"],
            discount_percent=data["discount_percent"],
        )
        services.submit_proposal(tenant, proposal=proposal, actor=request.user)
    except TierwiseError as exc:
        context = _builder_context(request, account, form)
        context.update(error=exc.message, error_details=exc.details)
        return TemplateResponse(
            request, "console/proposal_new.html", context, status=400 if exc.status_code == 400 else exc.status_code
        )
    return redirect("console:proposal", proposal_id=proposal.pk)


@console_view(READ)
def proposal_list(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    state = request.GET.get("state", "")
    return TemplateResponse(
        request,
        "console/proposals.html",
        base_context(request, proposals=selectors.list_proposals(tenant, state=state), state=state),
    )


def _proposal_page(request: HttpRequest, proposal_id: int, *, status: int = 200, **extra: object) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    proposal = selectors.get_proposal(tenant, proposal_id)
    shared = proposal.state == ProposalState.SHARED
    return TemplateResponse(
        request,
        "console/proposal.html",
        base_context(
            request,
            proposal=proposal,
            options=selectors.proposal_options(tenant, proposal),
            can_approve=services.can_approve(request.membership, proposal),  # type: ignore[attr-defined]
            approval_form=forms.ApprovalForm(),
            email_contacts=selectors.proposal_contacts(tenant, proposal) if shared else [],
            link_days=DOCUMENT_LINK_TTL.days,
            **extra,
        ),
        status=status,
    )


@console_view(READ)
def proposal_view(request: HttpRequest, proposal_id: int) -> HttpResponse:
    return _proposal_page(request, proposal_id)


def _act(request: HttpRequest, proposal_id: int, action: str) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    proposal = selectors.get_proposal(tenant, proposal_id)
    try:
        if action == "approve":
            form = forms.ApprovalForm(request.POST)
            note = form.cleaned_data["note"] if form.is_valid() else ""
            services.approve_proposal(tenant, proposal=proposal, membership=request.membership, note=note)  # type: ignore[attr-defined]
        elif action == "share":
            services.share_proposal(tenant, proposal=proposal, actor=request.user)
        elif action == "withdraw":
            services.withdraw_proposal(tenant, proposal=proposal, actor=request.user)
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=exc.status_code)
    messages.success(request, f"Proposal {proposal.get_state_display().lower()}.")
    return redirect("console:proposal", proposal_id=proposal.pk)


@console_view(READ, methods=POST)
def proposal_approve(request: HttpRequest, proposal_id: int) -> HttpResponse:
    return _act(request, proposal_id, "approve")  # the service checks the approver role


@console_view(WORK, methods=POST)
def proposal_share(request: HttpRequest, proposal_id: int) -> HttpResponse:
    return _act(request, proposal_id, "share")


@console_view(WORK, methods=POST)
def proposal_link(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """A fresh single-use link for the customer (POST: making one is an action, audited)."""
    tenant = request.tenant  # type: ignore[attr-defined]
    proposal = selectors.get_proposal(tenant, proposal_id)
    try:
        url = services.customer_link(tenant, proposal=proposal, actor=request.user)
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=exc.status_code)
    return _proposal_page(request, proposal_id, customer_link=url)


@console_view(WORK, methods=POST)
def proposal_email(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """Email a fresh customer link to one contact of the account, through messaging (capped, consented, once a
    day per contact: a double click sends one email). Another tenant's proposal or contact answers 404."""
    tenant = request.tenant  # type: ignore[attr-defined]
    proposal = selectors.get_proposal(tenant, proposal_id)
    form = forms.ProposalEmailForm(request.POST)
    if not form.is_valid():
        return _proposal_page(request, proposal_id, status=400, error="Choose who to email it to.")
    contact = selectors.get_proposal_contact(tenant, proposal, form.cleaned_data["contact"])
    try:
        sent = email_services.email_proposal_link(tenant, proposal=proposal, contact=contact, actor=request.user)
    except TierwiseError as exc:
        return _proposal_page(request, proposal_id, status=exc.status_code, error=exc.message)
    (messages.success if sent.admitted and not sent.repeated else messages.warning)(request, sent.text)
    return redirect("console:proposal", proposal_id=proposal.pk)


@console_view(WORK, methods=POST)
def proposal_withdraw(request: HttpRequest, proposal_id: int) -> HttpResponse:
    return _act(request, proposal_id, "withdraw")


@console_view(READ)
def proposal_document(request: HttpRequest, proposal_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    proposal = selectors.get_proposal(tenant, proposal_id)
    return HttpResponse(document.proposal_html(tenant, proposal))


@console_view(READ)
def proposal_pdf(request: HttpRequest, proposal_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    proposal = selectors.get_proposal(tenant, proposal_id)
    response = HttpResponse(document.proposal_pdf(tenant, proposal), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="proposal-{proposal.pk}.pdf"'
    return response
