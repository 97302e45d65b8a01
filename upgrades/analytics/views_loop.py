"""/analytics/feedback/answer/: a PM or the owner answers feedback with a packaging change (upgrades.analytics.loop).

GET shows the feedback rows of one tier/add-on (and reason) to pick and a confirmation form; POST (CSRF) acts.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.errors import NotFound, PermissionDenied, TierwiseError
from upgrades.analytics import loop
from upgrades.analytics.views import staff_of_tenant
from upgrades.offers.models import DeclineReason


def _int_or_none(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return -1  # refused by the service's validation (1 to 30)


@staff_of_tenant
@require_http_methods(["GET", "POST"])
def answer(request: HttpRequest, tenant) -> HttpResponse:
    try:
        loop.require_role(tenant, request.user)
    except PermissionDenied as error:
        return HttpResponseForbidden(error.message)
    data = request.POST if request.method == "POST" else request.GET
    target_kind, target_key = data.get("target_kind", "tier"), data.get("target_key", "")
    reason = data.get("reason", "")
    rows = list(loop.answerable_feedback(tenant, target_kind=target_kind, target_key=target_key, reason=reason)[:500])
    context = {
        "tenant": tenant,
        "title": "Answer feedback with a packaging change",
        "rows": rows,
        "target_kind": target_kind,
        "target_key": target_key,
        "reason": reason,
        "reasons": DeclineReason.choices,
        "max_days": loop.MAX_EARLY_ACCESS_DAYS,
        "change": data.get("change", ""),
        "days": data.get("days", ""),
        "picked": {int(i) for i in data.getlist("feedback") if i.isdigit()},
    }
    if request.method == "GET":
        return render(request, "analytics/answer_feedback.html", context)
    raw_ids = request.POST.getlist("feedback")
    try:
        if not all(i.isdigit() for i in raw_ids):
            raise NotFound("No such feedback.")
        result = loop.answer_feedback(
            tenant,
            actor=request.user,
            target_kind=target_kind,
            target_key=target_key,
            feedback_ids=[int(i) for i in raw_ids],
            change=request.POST.get("change", ""),
            days=_int_or_none(request.POST.get("days")),
        )
    except NotFound:
        raise Http404("No such feedback.") from None
    except TierwiseError as error:
        context["errors"] = error.details or {"": [error.message]}
        return render(request, "analytics/answer_feedback.html", context, status=error.status_code)
    return render(request, "analytics/answer_feedback_done.html", {**context, "result": result})
