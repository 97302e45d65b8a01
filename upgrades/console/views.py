"""Console pages: worklist, account 360 and its actions, tasks, saved views, playbooks. Thin: forms validate,
services act, selectors read."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.errors import TierwiseError
from accounts.middleware import staff_tenants
from accounts.models import Contact, LifecycleStage, Role, Segment
from catalog.models import GovernanceState, Tier
from upgrades.console import forms, selectors
from upgrades.console.access import PLAYBOOKS, READ, WORK, can, console_view
from upgrades.console.models import SavedView
from upgrades.console.services import playbooks as playbook_services
from upgrades.console.services import tasks as task_services
from upgrades.console.services.holdout import HELD_OUT_TEXT, is_held_out, require_not_held_out
from upgrades.console.worklist import WorklistFilters, worklist

POST = ("POST",)


def base_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    membership = request.membership  # type: ignore[attr-defined]
    return {
        "tenant": request.tenant,  # type: ignore[attr-defined]
        "membership": membership,
        "role": membership.role,
        "tenants": staff_tenants(request.user),
        "can_work": can(request, WORK),
        "can_playbooks": can(request, PLAYBOOKS),
        **extra,
    }


def _bad(request: HttpRequest, template: str, context: dict[str, Any], error: TierwiseError | None = None):
    if error is not None:
        context["error"] = error.message
        context["error_details"] = error.details
    return TemplateResponse(request, template, base_context(request, **context), status=400)


@console_view(READ)
def worklist_view(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    params = request.GET
    view_id = params.get("view", "")
    if view_id.isdigit():
        saved = SavedView.objects.for_tenant(tenant).filter(pk=int(view_id), user=request.user).first()
        if saved is not None:
            params = saved.filters
    filters = WorklistFilters.from_params(params)
    if "csm" not in params and request.membership.role != Role.CSM:  # type: ignore[attr-defined]
        filters = WorklistFilters.from_params({**dict(params.items()), "csm": "all"})
    try:
        page = int(request.GET.get("page") or 1)
    except ValueError:
        page = 1
    result = worklist(tenant, filters=filters, user_id=request.user.pk, page=page)
    context = base_context(
        request,
        page=result,
        filters=filters,
        query=filters.as_dict(),
        views=selectors.saved_views(tenant, request.user),
        csms=selectors.tenant_csms(tenant),
        segments=Segment.choices,
        stages=LifecycleStage.choices,
        tiers=Tier.objects.for_tenant(tenant).filter(state=GovernanceState.PUBLISHED).order_by("name"),
        view_form=forms.SavedViewForm(),
    )
    template = "console/_worklist_rows.html" if request.headers.get("HX-Request") else "console/worklist.html"
    return TemplateResponse(request, template, context)


@console_view(READ, methods=POST)
def save_view(request: HttpRequest) -> HttpResponse:
    form = forms.SavedViewForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    data = form.cleaned_data
    filters = WorklistFilters.from_params(data).as_dict()
    SavedView.objects.for_tenant(request.tenant).update_or_create(  # type: ignore[attr-defined]
        tenant=request.tenant,
        user=request.user,
        name=data["name"],
        defaults={"filters": filters},  # type: ignore[attr-defined]
    )
    return redirect(reverse("console:worklist") + "?" + "&".join(f"{k}={v}" for k, v in filters.items()))


@console_view(READ)
def account_view(request: HttpRequest, account_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    data = selectors.account_360(tenant, account)
    return TemplateResponse(
        request,
        "console/account.html",
        base_context(
            request,
            a=data,
            account=account,
            note_form=forms.NoteForm(),
            task_form=forms.TaskForm(),
            trial_form=forms.TrialForm(),
            grant_form=forms.GrantForm(),
            objections=selectors.objections(tenant),
            playbooks=selectors.playbooks_for_signals(tenant, account),
            usage_json=data.usage,
            held_out=is_held_out(tenant, account.pk),
            held_out_text=HELD_OUT_TEXT,
        ),
    )


@console_view(WORK, methods=POST)
def add_note(request: HttpRequest, account_id: int) -> HttpResponse:
    from accounts.services import record_audit
    from upgrades.console.models import AccountNote

    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    form = forms.NoteForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    note = AccountNote.objects.create(
        tenant=tenant, account=account, author=request.user, body=form.cleaned_data["body"]
    )
    record_audit(tenant, actor=request.user, action="console.note.add", obj=note)
    return redirect("console:account", account_id=account.pk)


@console_view(WORK, methods=POST)
def add_task(request: HttpRequest, account_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    form = forms.TaskForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    task_services.create_task(tenant, account=account, actor=request.user, **form.cleaned_data)
    return redirect("console:account", account_id=account.pk)


@console_view(WORK, methods=POST)
def close_task(request: HttpRequest, task_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    task = selectors.get_task(tenant, task_id)
    try:
        task_services.close_task(tenant, task=task, actor=request.user, done=request.POST.get("done", "1") == "1")
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=409)
    return redirect("console:account", account_id=task.account_id)


@console_view(WORK, methods=POST)
def outreach(request: HttpRequest, account_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    form = forms.OutreachForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    contact = Contact.objects.for_tenant(tenant).filter(pk=form.cleaned_data["contact"], account=account).first()
    if contact is None:
        return HttpResponse(
            '{"contact": [{"message": "Not a contact of this account."}]}', status=400, content_type="application/json"
        )
    try:
        message = task_services.record_csm_outreach(
            tenant,
            contact=contact,
            actor=request.user,
            note=form.cleaned_data["note"],
            upgrade=form.cleaned_data.get("purpose") != "check_in",
        )
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=exc.status_code)
    if message.state == "suppressed":
        messages.warning(
            request, f"Don't reach out now: {message.get_suppressed_reason_display() or message.suppressed_reason}."
        )
    else:
        messages.success(request, f"Outreach to {contact.email} recorded; it counts against the message cap.")
    return redirect("console:account", account_id=account.pk)


@console_view(WORK, methods=POST)
def grant_trial(request: HttpRequest, account_id: int) -> HttpResponse:
    from upgrades.offers.services.trials import start_trial

    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    form = forms.TrialForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    try:
        require_not_held_out(tenant, account.pk, doing="start an upgrade trial")
        start_trial(tenant, account=account, actor=request.user, source="console", **form.cleaned_data)
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=400 if exc.status_code == 500 else exc.status_code)
    messages.success(request, "Trial started.")
    return redirect("console:account", account_id=account.pk)


@console_view(WORK, methods=POST)
def grant_csm(request: HttpRequest, account_id: int) -> HttpResponse:
    from billing.models import GrantKind
    from billing.services.licenses import start_grant

    tenant = request.tenant  # type: ignore[attr-defined]
    account = selectors.get_account(tenant, account_id)
    form = forms.GrantForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    tier = (
        Tier.objects.for_tenant(tenant).filter(key=form.cleaned_data["tier"], state=GovernanceState.PUBLISHED).first()
    )
    if tier is None:
        return HttpResponse(
            '{"tier": [{"message": "No published tier with this key."}]}', status=400, content_type="application/json"
        )
    try:
        start_grant(
            tenant,
            account=account,
            kind=GrantKind.CSM_GRANT,
            actor=request.user,
            tier=tier,
            days=form.cleaned_data["days"],
            reason=form.cleaned_data["reason"],
        )
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=409 if exc.status_code == 409 else 400)
    messages.success(request, f"{tier.name} granted for {form.cleaned_data['days']} days.")
    return redirect("console:account", account_id=account.pk)


@console_view(READ)
def playbooks_view(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    return TemplateResponse(
        request,
        "console/playbooks.html",
        base_context(
            request,
            playbooks=selectors.playbooks_with_objections(tenant),
            form=forms.PlaybookForm(),
            objection_form=forms.ObjectionForm(),
        ),
    )


@console_view(PLAYBOOKS, methods=POST)
def save_playbook(request: HttpRequest, playbook_id: int | None = None) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    playbook = selectors.get_playbook(tenant, playbook_id) if playbook_id else None
    form = forms.PlaybookForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    try:
        playbook_services.save_playbook(tenant, actor=request.user, data=form.cleaned_data, playbook=playbook)
    except TierwiseError as exc:
        return HttpResponse(exc.message, status=400)
    return redirect("console:playbooks")


@console_view(PLAYBOOKS, methods=POST)
def add_objection(request: HttpRequest, playbook_id: int) -> HttpResponse:
    tenant = request.tenant  # type: ignore[attr-defined]
    playbook = selectors.get_playbook(tenant, playbook_id)
    form = forms.ObjectionForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_json(), status=400, content_type="application/json")
    playbook_services.add_objection(tenant, actor=request.user, playbook=playbook, data=form.cleaned_data)
    return redirect("console:playbooks")
