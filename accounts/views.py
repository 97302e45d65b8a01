"""Staff pages outside the admin: the sign-in entry point and invitations."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme, urlencode


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """`/accounts/login/` (Django's default LOGIN_URL) leads to the one sign-in page, the admin's."""
    target = request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = "/admin/"
    return HttpResponseRedirect("/admin/login/?" + urlencode({"next": target}))
