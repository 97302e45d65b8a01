"""Staff open the portal as one of their tenant's accounts (a fresh single-use session), e.g. from the workspace."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.errors import NotFound
from accounts.models import Capability
from accounts.selectors import get_account_for_tenant
from upgrades.portal import tokens
from upgrades.portal.models import PortalLinkKind


@require_POST
def open_as(request: HttpRequest, external_id: str) -> HttpResponse:
    membership = getattr(request, "membership", None)
    tenant = getattr(request, "tenant", None)
    if tenant is None or membership is None or not membership.can(Capability.REVIEW_OFFERS):
        raise Http404("No such account.")
    try:
        account = get_account_for_tenant(tenant, external_id)
    except NotFound:
        raise Http404("No such account.") from None
    _, url = tokens.create_portal_session(
        tenant, account=account, return_url="", actor=request.user, kind=str(PortalLinkKind.STAFF)
    )
    return redirect("portal:link", signed=url.rsplit("/", 1)[-1])
