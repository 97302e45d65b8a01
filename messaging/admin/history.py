"""A message template's version history in the admin: Django's object-history slot (the change page's
"History" button, /admin/messaging/messagetemplate/<id>/history/) shows every version of the template
instead of Django's LogEntry list (the services write the audit log; the admin writes no LogEntry).

Thin: find the template through the admin's tenant-scoped queryset (another tenant's id is a 404,
like a missing one), check the admin's view permission, read the history
(messaging.selectors_history), render.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from messaging.selectors_history import list_template_versions

if TYPE_CHECKING:
    from messaging.admin.templates import MessageTemplateAdmin

TEMPLATE = "admin/messaging/messagetemplate/version_history.html"


def version_history_view(model_admin: MessageTemplateAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    found = model_admin.get_queryset(request).filter(pk=object_id).first() if str(object_id).isdigit() else None
    if found is None or not model_admin.has_view_permission(request, found):
        raise Http404("No such template.")
    info = model_admin.opts.app_label, model_admin.opts.model_name
    versions = [
        {
            "entry": entry,
            "change_url": reverse("admin:{}_{}_change".format(*info), args=[entry.template.pk]),
            "preview_url": reverse("admin:{}_{}_preview".format(*info), args=[entry.template.pk]),
        }
        for entry in list_template_versions(found.tenant, template=found)
    ]
    variant = f" [{found.variant}]" if found.variant != "a" else ""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": found,
        "object": found,
        "title": f"Version history: {found.name}{variant}",
        "subtitle": None,
        "versions": versions,
        "change_url": reverse("admin:{}_{}_change".format(*info), args=[found.pk]),
    }
    return TemplateResponse(request, model_admin.object_history_template or TEMPLATE, context)
