"""Pages reached from an email without a sign-in: unsubscribe (RFC 8058 one-click), preferences,
the open pixel and the click redirect.

Hazard: these run before any tenant is known. Each verifies its signed token (messaging.tokens) and
only then activates the tenant the token names (row-level security), and reads only the one contact
or message the token names. The click redirect goes only to a URL recorded on that message when it
was rendered: never to a URL taken from the request (no open redirect).
"""

from __future__ import annotations

import base64
import zoneinfo

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Contact, Tenant
from accounts.tenancy import activate_tenant
from messaging import tokens
from messaging.services import policy
from messaging.services.preferences import record_click, record_open, unsubscribe, update_preferences

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _no_store(response: HttpResponse, *, referrer: str = "no-referrer") -> HttpResponse:
    """Token pages are never cached and never hand their URL (the token) to another site."""
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = referrer
    response["X-Robots-Tag"] = "noindex"
    return response


def _contact_from_token(token: str) -> tuple[Tenant, Contact] | None:
    try:
        payload = tokens.read(tokens.UNSUBSCRIBE, token)
    except tokens.BadToken:
        return None
    activate_tenant(payload.tenant_id)  # the signed token names its tenant; the request scope ends it
    tenant = Tenant.objects.filter(pk=payload.tenant_id).first()
    if tenant is None:
        return None
    contact = Contact.objects.for_tenant(tenant).filter(pk=payload.object_id).select_related("account").first()
    return (tenant, contact) if contact is not None else None


def _invalid(request: HttpRequest) -> HttpResponse:
    return _no_store(render(request, "messaging/link_invalid.html", status=404))


class PreferencesForm(forms.Form):
    subscribed = forms.BooleanField(
        required=False, label="Emails about plans, trials and offers that fit how you use it"
    )
    upgrade_email = forms.BooleanField(required=False, label="Lifecycle emails (trial progress, renewals)")
    in_app = forms.BooleanField(required=False, label="Suggestions inside the product")
    time_zone = forms.ChoiceField(required=False, label="Your time zone (we don't email you at night)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zones = sorted(zoneinfo.available_timezones())
        self.fields["time_zone"].choices = [("", "Same as the company's")] + [(z, z) for z in zones]


def _preferences_page(request: HttpRequest, tenant: Tenant, contact: Contact, token: str, *, form=None, saved=False,
                      unsubscribed=False) -> HttpResponse:  # fmt: skip
    pref = policy.preference_for(tenant, contact)
    if form is None:
        form = PreferencesForm(initial={"subscribed": pref.unsubscribed_at is None, "upgrade_email": pref.upgrade_email,
                                        "in_app": pref.in_app, "time_zone": pref.time_zone})  # fmt: skip
    context = {"tenant": tenant, "contact": contact, "form": form, "saved": saved, "unsubscribed": unsubscribed,
               "action": reverse("messaging-preferences", args=[token])}  # fmt: skip
    # same-origin, not no-referrer: with no-referrer the browser posts the form with `Origin: null`, which
    # Django's CSRF check refuses; same-origin still never sends the token's URL to another site.
    return _no_store(render(request, "messaging/preferences.html", context), referrer="same-origin")


@csrf_exempt  # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" with no cookie and no CSRF token
@require_http_methods(["GET", "POST"])
def one_click_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """POST: unsubscribe at once (the signed URL is the credential). GET: the preferences page."""
    found = _contact_from_token(token)
    if found is None:
        return _invalid(request)
    tenant, contact = found
    if request.method == "POST":
        unsubscribe(tenant, contact=contact, source="one-click")
        return _no_store(render(request, "messaging/unsubscribed.html", {"tenant": tenant}))
    return _preferences_page(request, tenant, contact, token)


@csrf_protect
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    found = _contact_from_token(token)
    if found is None:
        return _invalid(request)
    tenant, contact = found
    if request.method == "GET":
        return _preferences_page(request, tenant, contact, token)
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        return _preferences_page(request, tenant, contact, token, form=form)
    data = form.cleaned_data
    update_preferences(tenant, contact=contact, upgrade_email=data["upgrade_email"], in_app=data["in_app"],
                       subscribed=data["subscribed"], time_zone=data["time_zone"])  # fmt: skip
    return _preferences_page(request, tenant, contact, token, saved=True)


@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        payload = tokens.read(tokens.OPEN, token)
    except tokens.BadToken:
        payload = None
    if payload is not None:
        activate_tenant(payload.tenant_id)
        tenant = Tenant.objects.filter(pk=payload.tenant_id).first()
        if tenant is not None:
            record_open(tenant, message_id=payload.object_id)
    return _no_store(HttpResponse(_PIXEL, content_type="image/gif"))


@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        payload = tokens.read(tokens.CLICK, token)
    except tokens.BadToken:
        raise Http404("No such link.") from None
    activate_tenant(payload.tenant_id)
    tenant = Tenant.objects.filter(pk=payload.tenant_id).first()
    url = record_click(tenant, message_id=payload.object_id, index=payload.index or 0) if tenant else None
    if url is None:
        raise Http404("No such link.")
    return _no_store(HttpResponseRedirect(url))
