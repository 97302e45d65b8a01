from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.middleware import SESSION_TENANT_KEY
from accounts.models import Membership, Tenant
from accounts.tenancy import lookup_tenant_ids, tenant_context


class MemberAuthenticationForm(AdminAuthenticationForm):
    """Vendor staff sign in by membership; they are not Django `is_staff` users."""

    def confirm_login_allowed(self, user) -> None:
        if not user.is_active:
            raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        # Someone with only a pending invitation may sign in to answer it (it grants nothing else).
        if not (user.is_superuser or lookup_tenant_ids(Membership, "user", user.pk)):
            raise forms.ValidationError(
                self.error_messages["invalid_login"], code="invalid_login", params={"username": "email"}
            )


IndexContextProvider = Callable[[HttpRequest], Mapping[str, Any]]

# Apps above accounts (upgrades) feed the admin index without accounts importing them: each
# registers a callable from its AppConfig.ready() that returns extra template context.
_index_context_providers: list[IndexContextProvider] = []


def register_index_context(provider: IndexContextProvider) -> IndexContextProvider:
    """Add `provider(request) -> dict` to the admin index's context. Idempotent (ready() may run twice)."""
    if provider not in _index_context_providers:
        _index_context_providers.append(provider)
    return provider


def unregister_index_context(provider: IndexContextProvider) -> None:
    if provider in _index_context_providers:
        _index_context_providers.remove(provider)


class TierwiseAdminSite(admin.AdminSite):
    site_header = "Tierwise"
    site_title = "Tierwise"
    index_title = "Workspace"
    login_form = MemberAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_authenticated
            and (user.is_superuser or getattr(request, "membership", None) is not None)
        )

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        context: dict[str, Any] = {}
        for provider in _index_context_providers:
            context.update(provider(request))
        context.update(extra_context or {})
        return super().index(request, extra_context=context)

    def get_urls(self):
        return [path("switch-tenant/", self.admin_view(self.switch_tenant), name="switch_tenant"), *super().get_urls()]

    @staticmethod
    @require_POST
    def switch_tenant(request: HttpRequest) -> HttpResponseRedirect:
        try:
            wanted = int(request.POST.get("tenant", ""))
        except ValueError:
            wanted = 0
        if request.user.is_superuser:
            allowed = Tenant.objects.filter(pk=wanted).exists()
        else:
            with tenant_context(wanted or None):  # memberships are read inside their tenant (row-level security)
                allowed = Membership.objects.accepted().filter(user=request.user, tenant_id=wanted).exists()
        if allowed:
            request.session[SESSION_TENANT_KEY] = wanted
        target = request.POST.get("next") or "/admin/"
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
            target = "/admin/"
        return HttpResponseRedirect(target)
