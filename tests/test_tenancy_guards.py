"""Structural guards: a tenant-owned model can't be exposed through a plain admin or an unscoped API view."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import get_resolver

from accounts.admin_base import TenantScopedAdmin, TenantScopedInline
from accounts.models import Role
from accounts.tenancy import TenantQuerySet

OUR_APPS = {"accounts", "catalog", "billing", "usage", "messaging", "upgrades"}


def _tenant_owned(model) -> bool:
    return any(f.name == "tenant" for f in model._meta.fields)


def _our_models():
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def test_every_tenant_owned_model_is_read_through_for_tenant():
    missing = [
        m.__name__
        for m in _our_models()
        if _tenant_owned(m) and not isinstance(m._default_manager.all(), TenantQuerySet)
    ]
    assert missing == []


def test_every_admin_of_a_tenant_owned_model_is_tenant_scoped():
    offenders = []
    for model, model_admin in admin.site._registry.items():
        if _tenant_owned(model) and model._meta.app_label in OUR_APPS:
            if not isinstance(model_admin, TenantScopedAdmin):
                offenders.append(model.__name__)
            for inline in model_admin.inlines:
                if _tenant_owned(inline.model) and not issubclass(inline, TenantScopedInline):
                    offenders.append(f"{model.__name__}.{inline.__name__}")
    assert offenders == []


def test_every_api_view_is_tenant_scoped_or_declares_why_not():
    from accounts.api_base import TenantScopedViewSet

    offenders = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            route = prefix + str(pattern.pattern)
            if not route.startswith("api/v1/"):
                continue
            view = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
            if view is None or route.startswith(("api/v1/schema", "api/v1/docs")):
                continue
            scoped = issubclass(view, TenantScopedViewSet) or getattr(view, "tenant_scoped", False)
            if not scoped and not getattr(view, "unscoped_reason", ""):
                offenders.append(f"{route} -> {view.__name__}")

    walk(get_resolver().url_patterns)
    assert offenders == []


@pytest.mark.django_db
def test_every_admin_changelist_and_add_page_opens_for_an_owner(world_a):
    client = world_a.staff_client(Role.OWNER)
    failures = []
    for model in admin.site._registry:
        if model._meta.app_label not in OUR_APPS or model._meta.label == "accounts.User":
            continue  # users are managed by platform superusers only
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        status = client.get(base).status_code
        if status != 200:
            failures.append((base, status))
        add = client.get(base + "add/").status_code
        if add not in (200, 403):
            failures.append((base + "add/", add))
    assert failures == []
