import pytest

from accounts import services
from accounts.models import ApiKey, AuditEntry, Contact, CustomerAccount, Membership, Role
from tests.isolation import admin_url, assert_change_page_refuses, assert_changelist_hides

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(two_tenants):
    a, b = two_tenants
    key_a, _ = services.create_api_key(a.tenant, name="A key", scopes=["read"], actor="test")
    key_b, _ = services.create_api_key(b.tenant, name="B key", scopes=["read"], actor="test")
    return key_a, key_b


def test_owner_sees_only_own_accounts_keys_members_and_audit(two_tenants, keys):
    a, b = two_tenants
    client = a.staff_client(Role.OWNER)
    assert_changelist_hides(client, own=a.account, foreign=b.account)
    assert_changelist_hides(client, own=keys[0], foreign=keys[1])
    own_m = Membership.objects.get(tenant=a.tenant, role=Role.CSM)
    foreign_m = Membership.objects.get(tenant=b.tenant, role=Role.CSM)
    assert_changelist_hides(client, own=own_m, foreign=foreign_m)
    own_audit = AuditEntry.objects.for_tenant(a.tenant).first()
    foreign_audit = AuditEntry.objects.for_tenant(b.tenant).first()
    assert_changelist_hides(client, own=own_audit, foreign=foreign_audit)


def test_foreign_ids_do_not_open_in_the_admin(two_tenants, keys):
    a, b = two_tenants
    client = a.staff_client(Role.OWNER)
    for foreign in (
        b.account,
        keys[1],
        Membership.objects.filter(tenant=b.tenant).first(),
        AuditEntry.objects.for_tenant(b.tenant).first(),
        b.tenant,
    ):
        assert_change_page_refuses(client, foreign)


def test_posting_to_a_foreign_change_page_changes_nothing(two_tenants):
    a, b = two_tenants
    client = a.staff_client(Role.OWNER)
    client.post(
        admin_url(b.account),
        {"external_id": "acct-1", "name": "Hijacked", "lifecycle_stage": "active", "attributes": "{}"},
    )
    b.account.refresh_from_db()
    assert b.account.name == "Tenant B Customer"


def test_search_does_not_reach_another_tenant(two_tenants):
    a, b = two_tenants
    zebra = CustomerAccount.objects.create(tenant=b.tenant, external_id="zebra-b", name="Zebra Corp")
    html = a.staff_client(Role.OWNER).get(admin_url(CustomerAccount, "changelist") + "?q=Zebra").content.decode()
    assert admin_url(zebra) not in html
    assert "0 results" in html


def test_csm_dropdown_and_filter_offer_only_own_staff(two_tenants):
    a, b = two_tenants
    client = a.staff_client(Role.OWNER)
    add_html = client.get(admin_url(CustomerAccount, "add")).content.decode()
    assert "csm@tenant-a.test" in add_html
    assert "csm@tenant-b.test" not in add_html
    list_html = client.get(admin_url(CustomerAccount, "changelist")).content.decode()
    assert "csm@tenant-b.test" not in list_html


def test_adding_an_account_sets_the_tenant_and_audits(world_a):
    client = world_a.staff_client(Role.CSM)
    response = client.post(
        admin_url(CustomerAccount, "add"),
        {
            "external_id": "new-co",
            "name": "New Co",
            "lifecycle_stage": "onboarding",
            "attributes": "{}",
            "contacts-TOTAL_FORMS": "1",
            "contacts-INITIAL_FORMS": "0",
            "contacts-0-email": "ceo@newco.test",
            "contacts-0-name": "CEO",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = CustomerAccount.objects.get(external_id="new-co")
    assert account.tenant == world_a.tenant
    assert Contact.objects.get(account=account).tenant == world_a.tenant
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(action="customeraccount.created").exists()


def test_duplicate_external_id_in_admin_is_a_form_error_not_a_crash(world_a):
    client = world_a.staff_client(Role.CSM)
    response = client.post(
        admin_url(CustomerAccount, "add"),
        {
            "external_id": "acct-1",
            "name": "Dup",
            "lifecycle_stage": "active",
            "attributes": "{}",
            "contacts-TOTAL_FORMS": "0",
            "contacts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_same_external_id_is_fine_across_tenants_in_admin(two_tenants):
    a, b = two_tenants
    CustomerAccount.objects.filter(tenant=b.tenant, external_id="acct-1").update(external_id="only-b")
    CustomerAccount.objects.create(tenant=b.tenant, external_id="shared-id", name="B shared")
    response = a.staff_client(Role.CSM).post(
        admin_url(CustomerAccount, "add"),
        {
            "external_id": "shared-id",
            "name": "A shared",
            "lifecycle_stage": "active",
            "attributes": "{}",
            "contacts-TOTAL_FORMS": "0",
            "contacts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302


def test_analyst_may_view_but_not_change(world_a):
    client = world_a.staff_client(Role.ANALYST)
    assert client.get(admin_url(CustomerAccount, "changelist")).status_code == 200
    assert client.get(admin_url(CustomerAccount, "add")).status_code == 403
    response = client.post(
        admin_url(world_a.account),
        {"external_id": "acct-1", "name": "Changed", "lifecycle_stage": "active", "attributes": "{}"},
    )
    assert response.status_code == 403
    world_a.account.refresh_from_db()
    assert world_a.account.name == "Tenant A Customer"


def test_csm_cannot_manage_api_keys(world_a):
    client = world_a.staff_client(Role.CSM)
    assert client.get(admin_url(ApiKey, "add")).status_code == 403


def test_api_key_created_in_admin_is_shown_once_and_stored_hashed(world_a):
    client = world_a.staff_client(Role.OWNER)
    response = client.post(
        admin_url(ApiKey, "add"), {"name": "Website", "scope_choices": ["read", "ingest"]}, follow=True
    )
    html = response.content.decode()
    key = ApiKey.objects.for_tenant(world_a.tenant).get(name="Website")
    assert key.scopes == ["ingest", "read"]
    assert f"tw_{key.prefix}_" in html
    again = client.get(admin_url(key)).content.decode()
    assert f"tw_{key.prefix}_" not in again.replace(f"tw_{key.prefix}_…", "")


def test_revoke_action_revokes_and_audits(world_a):
    key, _ = services.create_api_key(world_a.tenant, name="old", scopes=["read"], actor="test")
    client = world_a.staff_client(Role.OWNER)
    client.post(admin_url(ApiKey, "changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(action="api_key.revoked").exists()


def test_owner_adds_a_member_by_email_as_a_pending_invitation(world_a):
    client = world_a.staff_client(Role.OWNER)
    response = client.post(admin_url(Membership, "add"), {"email": "new.pm@tenant-a.test", "role": "product_manager"})
    assert response.status_code == 302
    invited = Membership.all_objects.get(tenant=world_a.tenant, user__email="new.pm@tenant-a.test")
    assert invited.accepted_at is None and invited.role == Role.PRODUCT_MANAGER
    assert not Membership.objects.filter(pk=invited.pk).exists()  # grants nothing until accepted
    listing = client.get(admin_url(Membership, "changelist")).content.decode()
    assert "new.pm@tenant-a.test" in listing and "Invited" in listing


def test_staff_in_two_tenants_switch_explicitly(two_tenants):
    a, b = two_tenants
    user = a.staff[Role.PRODUCT_MANAGER]
    Membership.objects.create(tenant=b.tenant, user=user, role=Role.ANALYST)
    client = a.staff_client(Role.PRODUCT_MANAGER)
    first = client.get(admin_url(CustomerAccount, "changelist")).content.decode()
    assert "Tenant A Customer" in first and "Tenant B Customer" not in first
    client.post("/admin/switch-tenant/", {"tenant": b.tenant.pk, "next": "/admin/"})
    second = client.get(admin_url(CustomerAccount, "changelist")).content.decode()
    assert "Tenant B Customer" in second and "Tenant A Customer" not in second


def test_switching_to_a_tenant_without_membership_is_ignored(two_tenants):
    a, b = two_tenants
    client = a.staff_client(Role.OWNER)
    client.post("/admin/switch-tenant/", {"tenant": b.tenant.pk})
    html = client.get(admin_url(CustomerAccount, "changelist")).content.decode()
    assert "Tenant A Customer" in html and "Tenant B Customer" not in html


def test_superuser_sees_every_tenant(two_tenants, superuser):
    from django.test import Client

    client = Client()
    client.force_login(superuser)
    html = client.get(admin_url(CustomerAccount, "changelist")).content.decode()
    assert "Tenant A Customer" in html and "Tenant B Customer" in html


def test_vendor_staff_log_in_through_the_admin_form(world_a):
    from django.test import Client

    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "owner@tenant-a.test", "password": "pw-for-tests-123"}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_people_without_membership_cannot_log_in(db):
    from django.test import Client

    from accounts.models import User

    User.objects.create_user("stranger@nowhere.test", "pw-for-tests-123")
    response = Client().post("/admin/login/", {"username": "stranger@nowhere.test", "password": "pw-for-tests-123"})
    assert response.status_code == 200
    assert "correct" in response.content.decode()


def test_admin_shows_times_in_the_tenants_time_zone(world_a):
    from datetime import UTC, datetime

    world_a.tenant.time_zone = "Asia/Tokyo"
    world_a.tenant.save()
    AuditEntry.objects.create(
        tenant=world_a.tenant,
        actor_label="test",
        action="clock.check",
        created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
    )
    html = world_a.staff_client(Role.OWNER).get(admin_url(AuditEntry, "changelist")).content.decode()
    assert "2 Mar 2026, 08:30" in html  # 23:30 UTC is 08:30 next day in Tokyo, in the one date style
