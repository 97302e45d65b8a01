"""The confirmation step before Approve and Publish: the diff against the previous version and its impact.

Approve and Publish are never one click: the change page links here (GET), this page shows
catalog.review's diff and impact with a comment box for the approver, and its form posts to the
governance transition with `confirmed=1`. A transition posted without it is sent back here.
The list actions "Approve selected" / "Publish selected" show the same page for every selected
item (Django's intermediate-page pattern) before doing anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.admin import helpers
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from catalog import review
from catalog.models import Governed

if TYPE_CHECKING:
    from catalog.admin import GovernedAdmin

REVIEWED_TRANSITIONS = ("approve", "publish")
VERBS = {"approve": "approving", "publish": "publishing"}


def _context(model_admin: GovernedAdmin, request: HttpRequest, transition: str, reviews: list[Any]) -> dict[str, Any]:
    opts = model_admin.opts
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": f"Review before {VERBS[transition]}",
        "transition": transition,
        "verb": VERBS[transition],
        "button": "Approve" if transition == "approve" else "Publish",
        "reviews": reviews,
        "comment_max": 1000,
    }


def review_view(model_admin: GovernedAdmin, request: HttpRequest, object_id: int, transition: str) -> HttpResponse:
    """GET: the review of one item before approving or publishing it; its form posts the transition."""
    if transition not in REVIEWED_TRANSITIONS:
        raise Http404("Only approving and publishing are reviewed.")
    obj = model_admin.get_queryset(request).filter(pk=object_id).first()  # tenant-scoped: foreign ids are 404
    if obj is None or not model_admin.has_view_permission(request, obj):
        raise Http404("No such item.")
    info = model_admin.opts.app_label, model_admin.opts.model_name
    context = _context(model_admin, request, transition, [review.review_change(request.tenant, obj=obj)])
    context.update(
        {
            "action_url": reverse("admin:{}_{}_transition".format(*info), args=[obj.pk, transition]),
            "cancel_url": reverse("admin:{}_{}_change".format(*info), args=[obj.pk]),
            "object": obj,
        }
    )
    return TemplateResponse(request, "admin/catalog/review.html", context)


def bulk_review(model_admin: GovernedAdmin, request: HttpRequest, queryset: Any, transition: str) -> HttpResponse:
    """The intermediate page of the list actions: every selected item's review, one confirm for all."""
    items: list[Governed] = list(queryset)
    context = _context(model_admin, request, transition, [review.review_change(request.tenant, obj=o) for o in items])
    context.update(
        {
            "action_url": "",  # posts back to the change list with the action and the selection
            "cancel_url": reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist"),
            "bulk_action": f"{transition}_selected",
            "selected": [o.pk for o in items],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
    )
    return TemplateResponse(request, "admin/catalog/review.html", context)
