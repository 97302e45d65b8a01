"""Admin actions need the capability their service needs: offered only to members who hold it, and refused
when a lower role posts the action's name by hand."""

from __future__ import annotations

import pytest
from django.contrib import admin

from accounts import services
from accounts.admin_base import TenantScopedAdmin, action_capability
from accounts.models import ApiKey, AuditEntry, Capability, Membership, Role
from billing.models import License, LicenseStatus
from tests.billing.factories import make_catalog, make_license
from tests.isolation import admin_url

pytestmark = pytest.mark.django_db


OUR_APPS = {"accounts", "catalog", "billing", "usage", "messaging", "upgrades"}


def _all_actions():
    for model, model_admin in admin.site._registry.items():
        if model_admin.actions is None or model._meta.app_label not in OUR_APPS:
            continue
        for func, name, _ in model_admin._get_base_actions():
            yield model, model_admin, func, name


def test_every_admin_action_in_every_registered_admin_of_ours_declares_a_capability():
    undeclared = [
        f"{model._meta.label}.{name}"
        for model, _, func, name in _all_actions()
        if action_capability(func) is None and not getattr(func, "allowed_permissions", None)
    ]
    assert undeclared == [], "declare each with @tenant_action(capability=...): " + ", ".join(undeclared)


def test_every_declared_capability_is_a_real_one_and_custom_actions_sit_on_tenant_scoped_admins():
    for model, model_admin, func, name in _all_actions():
        capability = action_capability(func)
        if capability is None:
            continue  # Django's delete_selected: guarded by has_delete_permission
        assert capability in Capability.values, f"{model._meta.label}.{name}: unknown capability {capability!r}"
        assert isinstance(model_admin, TenantScopedAdmin), f"{model._meta.label}.{name} is not re-checked when run"


def test_third_party_admins_are_for_platform_superusers_only(world_a, rf):
    """django-axes' admin (sign-in attempts of every tenant) is not tenant-scoped: no tenant role may open it."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in OUR_APPS:
            continue
        for role in Role.values:
            request = rf.get("/admin/")
            request.user = world_a.staff[role]
            request.tenant = world_a.tenant
            request.membership = Membership.objects.get(tenant=world_a.tenant, user=world_a.staff[role])
            assert not model_admin.has_module_permission(request), f"{model._meta.label} opens for {role}"
            assert not model_admin.has_view_permission(request)  # so no changelist, so none of its actions
    owner = world_a.staff_client(Role.OWNER)
    assert owner.get("/admin/axes/accessattempt/").status_code in (302, 403, 404)
    posted = owner.post("/admin/axes/accessattempt/", {"action": "cleanup_expired_attempts", "_selected_action": []})
    assert posted.status_code in (302, 403, 404)


@pytest.mark.parametrize("role", [Role.PRODUCT_MANAGER, Role.CSM, Role.ANALYST])
def test_a_role_without_manage_tenant_is_not_offered_and_cannot_post_revoke_key(world_a, role):
    key, _ = services.create_api_key(world_a.tenant, name="prod", scopes=["read"], actor="test")
    client = world_a.staff_client(role)
    changelist = admin_url(ApiKey, "changelist")

    page = client.get(changelist).content.decode()
    assert 'value="revoke"' not in page
    client.post(changelist, {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditEntry.objects.filter(action="api_key.revoked").exists()


def test_the_owner_is_offered_revoke_key_and_it_works(world_a):
    key, _ = services.create_api_key(world_a.tenant, name="prod", scopes=["read"], actor="test")
    client = world_a.staff_client(Role.OWNER)
    assert 'value="revoke"' in client.get(admin_url(ApiKey, "changelist")).content.decode()
    client.post(admin_url(ApiKey, "changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.parametrize("role", [Role.PRODUCT_MANAGER, Role.ANALYST])
def test_a_role_without_manage_billing_cannot_post_licence_revoke(world_a, role):
    catalog = make_catalog(world_a.tenant)
    license = make_license(world_a.account, catalog.prices["team-month"])
    client = world_a.staff_client(role)
    changelist = admin_url(License, "changelist")
    client.post(changelist, {"action": "revoke", "_selected_action": [license.pk], "reason": "because"})
    license.refresh_from_db()
    assert license.status == LicenseStatus.ACTIVE


@pytest.mark.parametrize("role", [Role.PRODUCT_MANAGER, Role.CSM, Role.ANALYST])
def test_a_role_without_manage_tenant_cannot_post_invitation_actions(world_a, role):
    from accounts.invitations import add_member

    pending = add_member(world_a.tenant, email="p@tenant-a.test", role=Role.ANALYST, actor="test")
    client = world_a.staff_client(role)
    client.post(admin_url(Membership, "changelist"), {"action": "revoke_invitations", "_selected_action": [pending.pk]})
    assert Membership.all_objects.filter(pk=pending.pk).exists()


def test_an_action_rechecks_its_capability_when_run_even_if_offered(world_a, rf):
    """The guard inside the action, not only the filtered list: a stale or forged list still cannot run it."""
    from django.core.exceptions import PermissionDenied

    key, _ = services.create_api_key(world_a.tenant, name="prod", scopes=["read"], actor="test")
    model_admin = admin.site._registry[ApiKey]
    owner_request = rf.post("/admin/")
    owner_request.user = world_a.staff[Role.OWNER]
    owner_request.tenant = world_a.tenant
    owner_request.membership = Membership.objects.get(tenant=world_a.tenant, user=world_a.staff[Role.OWNER])
    guarded = model_admin.get_actions(owner_request)["revoke"][0]

    analyst_request = rf.post("/admin/")
    analyst_request.user = world_a.staff[Role.ANALYST]
    analyst_request.tenant = world_a.tenant
    analyst_request.membership = Membership.objects.get(tenant=world_a.tenant, user=world_a.staff[Role.ANALYST])
    with pytest.raises(PermissionDenied):
        guarded(model_admin, analyst_request, ApiKey.objects.filter(pk=key.pk))
    key.refresh_from_db()
    assert key.revoked_at is None
