"""The portal settings admin: validated origins, logo and colour; the owner edits, other roles may not;
another tenant's settings are never shown or changed."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.isolation import admin_url, assert_change_page_refuses
from upgrades.portal.models import PortalSettings

pytestmark = pytest.mark.django_db

GOOD = {"allowed_origins": "https://app.example.com\nhttp://localhost:8000/\n", "brand_colour": "#1D4ED8"}


def test_the_owner_adds_validated_settings_once(world_a):
    owner = world_a.staff_client(Role.OWNER)
    added = owner.post(admin_url(PortalSettings, "add"), {**GOOD, "logo_url": "https://cdn.example.com/logo.png"})
    assert added.status_code == 302, added.content.decode()[-2000:]
    saved = PortalSettings.objects.get()
    assert saved.tenant == world_a.tenant
    assert saved.allowed_origins == ["https://app.example.com", "http://localhost:8000"]
    assert saved.brand_colour == "#1d4ed8"
    assert owner.get(admin_url(PortalSettings, "add")).status_code == 403  # one row per tenant
    change = owner.get(admin_url(saved, "change")).content.decode()
    assert "https://app.example.com\nhttp://localhost:8000" in change


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("allowed_origins", "http://app.example.com", "only for localhost"),
        ("allowed_origins", "https://app.example.com/path", "no path"),
        ("allowed_origins", "https://app.example.com?x=1", "no path"),
        ("allowed_origins", "ftp://app.example.com", "write an origin"),
        ("allowed_origins", "https://u:p@app.example.com", "no path, query or user"),
        ("allowed_origins", "https://app.example.com:99999", "is not a URL"),
        ("brand_colour", "blue", "#rrggbb"),
        ("brand_colour", "#12345", "#rrggbb"),
        ("brand_colour", "#1234567", "at most 7"),
        ("logo_url", "http://cdn.example.com/logo.png", "https://"),
    ],
)
def test_bad_values_are_refused_on_their_field_and_nothing_is_saved(world_a, field, value, reason):
    owner = world_a.staff_client(Role.OWNER)
    response = owner.post(admin_url(PortalSettings, "add"), {**GOOD, field: value})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and reason in " ".join(errors[field]), errors
    assert not PortalSettings.objects.exists()


@pytest.mark.parametrize("role", [Role.PRODUCT_MANAGER, Role.CSM, Role.ANALYST])
def test_other_roles_may_not_add_or_change_them(world_a, role):
    mine = PortalSettings.objects.create(tenant=world_a.tenant, allowed_origins=["https://app.example.com"])
    client = world_a.staff_client(role)
    assert client.post(admin_url(PortalSettings, "add"), GOOD).status_code == 403
    client.post(admin_url(mine, "change"), {**GOOD, "allowed_origins": "https://evil.example.com"})
    mine.refresh_from_db()
    assert mine.allowed_origins == ["https://app.example.com"]


def test_another_tenants_settings_are_hidden_and_unchanged(world_a, world_b):
    theirs = PortalSettings.objects.create(tenant=world_b.tenant, allowed_origins=["https://b.example.com"])
    owner = world_a.staff_client(Role.OWNER)
    listing = owner.get(admin_url(PortalSettings, "changelist"))
    assert listing.status_code == 200 and admin_url(theirs) not in listing.content.decode()
    assert_change_page_refuses(owner, theirs)
    owner.post(admin_url(theirs, "change"), {**GOOD, "allowed_origins": "https://evil.example.com"})
    theirs.refresh_from_db()
    assert theirs.allowed_origins == ["https://b.example.com"]
    # Adding their own settings never touches tenant B's row.
    assert owner.post(admin_url(PortalSettings, "add"), GOOD).status_code == 302
    assert PortalSettings.objects.for_tenant(world_a.tenant).count() == 1
    theirs.refresh_from_db()
    assert theirs.allowed_origins == ["https://b.example.com"]
