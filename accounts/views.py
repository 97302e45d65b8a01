"""Staff pages outside the admin: the sign-in entry point and invitations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from accounts import invitations
from accounts.errors import TierwiseError
from accounts.middleware import SESSION_TENANT_KEY


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """`/accounts/login/` (Django's default LOGIN_URL) leads to the one sign-in page, the admin's."""
    target = request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = "/admin/"
    return HttpResponseRedirect("/admin/login/?" + urlencode({"next": target}))


@never_cache
@csrf_protect
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """One invitation: a person new to Tierwise chooses a password and accepts; an existing user, signed in
    as the invited email, accepts or declines. The link works once and expires."""
    membership = invitations.find_invitation(token)
    if membership is None:
        return _no_referrer(render(request, "accounts/invitation_invalid.html", status=404))
    invitee = membership.user
    needs_password = not invitee.has_usable_password()
    user = request.user if request.user.is_authenticated else None
    form = SetPasswordForm(invitee, data=request.POST or None) if needs_password else None
    error = ""
    if request.method == "POST":
        try:
            if request.POST.get("decision") == "decline":
                invitations.decline_invitation(token=token, user=user)
                return _no_referrer(render(request, "accounts/invitation_declined.html", {"tenant": membership.tenant}))
            if form is not None and not form.is_valid():
                raise _FormInvalid
            password = form.cleaned_data["new_password1"] if form is not None else None
            accepted = invitations.accept_invitation(token=token, user=user, password=password)
        except _FormInvalid:
            pass
        except TierwiseError as exc:
            error = exc.message
        else:
            if user is None or user.pk != invitee.pk:
                login(request, accepted.user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_TENANT_KEY] = accepted.tenant_id
            messages.success(request, f"Welcome to {accepted.tenant.name}.")
            return HttpResponseRedirect("/admin/")
    context = {
        "membership": membership,
        "tenant": membership.tenant,
        "invitee": invitee,
        "form": form,
        "needs_password": needs_password,
        "signed_in_as_invitee": user is not None and user.pk == invitee.pk,
        "signed_in_as_other": user is not None and user.pk != invitee.pk,
        "login_url": "/admin/login/?" + urlencode({"next": request.path}),
        "error": error,
    }
    return _no_referrer(render(request, "accounts/invitation.html", context))


class _FormInvalid(Exception):
    pass


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: never hand it to another site in a Referer header. ("no-referrer" would also
    # make the browser send `Origin: null` on the page's own form, which CSRF protection rightly refuses.)
    response["Referrer-Policy"] = "same-origin"
    return response
