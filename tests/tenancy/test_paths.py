"""Every path sets the tenant: API, admin, Celery and management commands, run as the app role.

Under row-level security a path that forgot the tenant sees nothing and cannot write (see
test_isolation), so each of these working end to end is the proof that it sets it.
"""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, AuditEntry, CustomerAccount, Membership, Role, Tenant
from accounts.tasks import record_worker_heartbeat
from accounts.tenancy import tenant_context
from tests.billing.factories import configure_stripe
from tests.conftest import wait_for
from tests.services import require_redis
from tests.usage.factories import event, give_license, make_catalog
from usage.models import Event
from usage.partitions import ensure_event_partitions, partition_name

from .conftest import APP_PASSWORD, APP_ROLE, SUITE_USER, database_url, superuser_sql

pytestmark = [pytest.mark.integration]


def probe_tenants(response) -> set:
    assert response.status_code == 200, response.content[:500]
    return {t for ids in response.json().values() for t in ids} - {None}


def test_api_ingest_and_an_entitlement_check_work_as_the_app_role_inside_the_keys_tenant(two_tenants, connect_as):
    a, b = two_tenants
    catalog = make_catalog(a.tenant)
    make_catalog(b.tenant)
    give_license(a.account, catalog.team)
    client = a.api("ingest", "read")
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)

    response = client.post("/api/v1/events", {"events": [event(key=f"rls-{i}") for i in range(5)]}, format="json")
    assert response.status_code in (200, 201, 202), response.content
    assert response.json()["accepted"] == 5
    response = client.post(
        "/api/v1/entitlements/check", {"account": "acct-1", "feature": "api_calls", "quantity": 1}, format="json"
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["allowed"] is True and answer["used"] == 5, answer

    with tenant_context(a.tenant):
        assert Event.objects.filter(idempotency_key__startswith="rls-").count() == 5
    with tenant_context(b.tenant):
        assert not Event.objects.filter(idempotency_key__startswith="rls-").exists()


def test_admin_pages_work_as_the_app_role_in_the_staff_members_tenant_and_the_one_they_switch_to(
    two_tenants, superuser, connect_as, settings
):
    a, b = two_tenants
    settings.ROOT_URLCONF = "tests.tenancy.urls"
    owner = a.staff[Role.OWNER]
    extra = {"accepted_at": timezone.now()} if any(f.name == "accepted_at" for f in Membership._meta.fields) else {}
    Membership.objects.create(tenant=b.tenant, user=owner, role=Role.PRODUCT_MANAGER, **extra)
    staff = a.staff_client(Role.OWNER)
    root = a.staff_client(Role.OWNER)
    root.force_login(superuser)
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)

    assert staff.get("/admin/").status_code == 200
    page = staff.get("/admin/accounts/customeraccount/")
    assert page.status_code == 200
    assert a.account.name in page.content.decode() and b.account.name not in page.content.decode()
    assert probe_tenants(staff.get("/rls-probe/staff/")) == {a.tenant.pk}

    assert staff.post("/admin/switch-tenant/", {"tenant": b.tenant.pk}).status_code == 302
    page = staff.get("/admin/accounts/customeraccount/")
    assert b.account.name in page.content.decode() and a.account.name not in page.content.decode()
    assert probe_tenants(staff.get("/rls-probe/staff/")) == {b.tenant.pk}

    # A platform superuser works inside the tenant they switched to, and sees nothing before.
    assert probe_tenants(root.get("/rls-probe/staff/")) == set()
    assert root.post("/admin/switch-tenant/", {"tenant": b.tenant.pk}).status_code == 302
    assert probe_tenants(root.get("/rls-probe/staff/")) == {b.tenant.pk}


def test_a_task_given_a_tenant_id_runs_inside_that_tenant_in_process_and_on_a_real_worker(
    two_tenants, connect_as, request
):
    a, b = two_tenants
    require_redis()
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    assert record_worker_heartbeat.apply(args=[b.tenant.pk]).get() == b.tenant.slug  # in process (eager)

    request.getfixturevalue("celery_worker_process")  # started now: it connects as the app role
    record_worker_heartbeat.delay(a.tenant.pk)

    def beats(tenant) -> int:
        with tenant_context(tenant):
            return AuditEntry.objects.filter(action="worker.heartbeat").count()

    wait_for(lambda: beats(a.tenant) == 1, timeout=60)
    assert beats(b.tenant) == 1  # the eager one, and nothing of A's
    with tenant_context(a.tenant):
        assert set(AuditEntry.objects.filter(action="worker.heartbeat").values_list("tenant_id", flat=True)) == {
            a.tenant.pk
        }


def test_a_management_command_with_tenant_runs_inside_that_tenant_as_the_app_role(two_tenants, connect_as, capsys):
    a, b = two_tenants
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    call_command("create_tenant", "--name", "Initech", "--slug", "initech", "--owner-email", "boss@initech.test")
    initech = Tenant.objects.get(slug="initech")
    with tenant_context(initech):
        assert Membership._base_manager.filter(user__email="boss@initech.test", role=Role.OWNER).exists()
    capsys.readouterr()
    call_command("create_api_key", "--tenant", b.tenant.slug, "--scopes", "read", "--name", "from the cli")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    with tenant_context(b.tenant):
        assert ApiKey.objects.filter(name="from the cli").count() == 1
    with tenant_context(a.tenant):
        assert not ApiKey.objects.filter(name="from the cli").exists()
        assert CustomerAccount.objects.count() == 1
    assert secret.startswith("tw_")


def test_seed_demo_runs_as_the_app_role(connect_as):
    from .test_roles import run

    result = run(
        ["manage.py", "seed_demo", "--accounts", "5"],
        DEBUG="1",  # development, as make run; row-level security holds all the same for this role
        DATABASE_URL=database_url(user=APP_ROLE, password=APP_PASSWORD),
        STRIPE_API_BASE="http://127.0.0.1:9",  # no stand-in: licences without subscriptions
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Demo tenant: Acme Analytics" in result.stdout
    assert "row-level security policy" not in result.stderr  # nor in a receiver that logged and went on
    acme = Tenant.objects.get(slug="acme")
    with tenant_context(acme):
        assert CustomerAccount.objects.count() >= 5
        assert Membership.objects.filter(role=Role.OWNER).exists()


def test_the_app_role_adds_a_months_event_partition_through_the_owner_with_row_level_security_forced(
    as_app_role, django_db_blocker
):
    month = datetime.date(2031, 7, 1)
    name = partition_name(month)
    try:
        with (
            connection.cursor() as cursor,
            pytest.raises(DatabaseError, match="permission denied|must be owner"),
            transaction.atomic(),
        ):
            cursor.execute(
                f"CREATE TABLE {name}_x PARTITION OF usage_event FOR VALUES FROM ('2031-08-01') TO ('2031-09-01')"
            )
        assert ensure_event_partitions([month]) == [name]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) FROM pg_class "
                "WHERE relname = %s",
                [name],
            )
            assert cursor.fetchone() == (True, True, SUITE_USER[0])  # the owner's, not the app role's
            cursor.execute("SELECT qual FROM pg_policies WHERE tablename = %s AND policyname = 'tw_tenant'", [name])
            assert cursor.fetchone() == ("(tenant_id = tw_current_tenant())",)
    finally:
        superuser_sql(f"DROP TABLE IF EXISTS {name}")


def test_commands_over_every_tenant_work_tenant_by_tenant_as_the_app_role(two_tenants, connect_as, capsys):
    a, b = two_tenants
    for world in (a, b):
        make_catalog(world.tenant)
        configure_stripe(world.tenant)
    client = a.api("ingest")
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    response = client.post("/api/v1/events", {"events": [event(key=f"rb-{i}") for i in range(3)]}, format="json")
    assert response.status_code < 300, response.content

    call_command("rebuild_rollups")  # no --tenant: every tenant
    out = capsys.readouterr().out
    rebuilt = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert rebuilt[a.tenant.slug] != "0 rollup rows rebuilt", out  # A's events were seen and rolled up
    call_command("rotate_billing_secrets")
    assert "Re-encrypted the Stripe settings of 2 tenant(s)." in capsys.readouterr().out
