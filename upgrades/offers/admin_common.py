"""Pieces every offers admin page shares: rendering a custom page, calling a service, reading a form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.errors import TierwiseError
from accounts.models import Membership


def page(model_admin: Any, request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    """A custom admin page with the admin's chrome (site header, nav, permissions)."""
    request.current_app = model_admin.admin_site.name
    base = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "subtitle": None,
        "has_view_permission": True,
    }
    return TemplateResponse(request, template, {**base, **context})


def run(request: HttpRequest, call: Callable[[], Any], success: str | Callable[[Any], str]) -> Any:
    """Call one service; its refusal becomes an error message on the page instead of a 500."""
    try:
        result = call()
    except TierwiseError as exc:
        messages.error(request, exc.message)
        return None
    messages.success(request, success(result) if callable(success) else success)
    return result


def role_of(request: HttpRequest) -> str:
    membership: Membership | None = getattr(request, "membership", None)
    return membership.role if membership is not None else ""


def int_or_raw(raw: str | None, default: int) -> int | str:
    text = (raw or "").strip()
    if not text:
        return default
    return int(text) if text.isdigit() else text


def object_or_404(model_admin: Any, request: HttpRequest, object_id: str) -> Any:
    """The row from the admin's tenant-scoped queryset; another tenant's id (or a missing one) is a 404."""
    from django.contrib.admin.utils import unquote
    from django.http import Http404

    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404("No such object.")
    return obj
