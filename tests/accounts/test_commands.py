from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import ApiKey, CustomerAccount, Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_prints_a_working_owner_login():
    out = run("create_tenant", "--name", "Initech", "--slug", "initech", "--owner-email", "boss@initech.test")
    tenant = Tenant.objects.get(slug="initech")
    assert Membership.objects.get(tenant=tenant).role == Role.OWNER
    password = out.split("boss@initech.test / ")[1].split()[0]
    assert User.objects.get(email="boss@initech.test").check_password(password)


def test_create_tenant_refuses_a_taken_slug(world_a):
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "--name", "X", "--slug", "tenant-a", "--owner-email", "x@x.test")


def test_create_api_key_prints_the_key_alone_on_the_last_line_and_it_works(world_a):
    out = run("create_api_key", "--tenant", "tenant-a", "--scopes", "read,ingest")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tw_") and " " not in secret
    assert ApiKey.objects.for_tenant(world_a.tenant).get(prefix=secret.split("_")[1]).scopes == ["ingest", "read"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/accounts").status_code == 200


def test_create_api_key_rejects_unknown_scopes_and_tenants(world_a):
    with pytest.raises(CommandError):
        run("create_api_key", "--tenant", "tenant-a", "--scopes", "read,root")
    with pytest.raises(CommandError):
        run("create_api_key", "--tenant", "nope", "--scopes", "read")


def test_seed_demo_is_idempotent_and_prints_slug_and_logins():
    first = run("seed_demo", "--accounts", "30")
    counts = (CustomerAccount.objects.count(), User.objects.count(), Membership.objects.count())
    second = run("seed_demo", "--accounts", "30")
    assert (CustomerAccount.objects.count(), User.objects.count(), Membership.objects.count()) == counts
    assert "slug: acme" in first and "slug: acme" in second
    assert "owner@acme.test" in second and "tierwise-demo" in second
    acme = Tenant.objects.get(slug="acme")
    assert CustomerAccount.objects.for_tenant(acme).count() == 30
    assert User.objects.get(email="pm@acme.test").check_password("tierwise-demo")


def test_seed_demo_leaves_an_invitation_in_the_tenants_outbox(settings, django_capture_on_commit_callbacks):
    from messaging.models import OutboxEmail

    settings.EMAIL_BACKEND = "messaging.backends.OutboxEmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        run("seed_demo", "--accounts", "10")
    acme = Tenant.objects.get(slug="acme")
    invitation = OutboxEmail.objects.for_tenant(acme).get()
    assert "new.hire@acme.test" in invitation.to
    with django_capture_on_commit_callbacks(execute=True):
        run("seed_demo", "--accounts", "10")
    assert OutboxEmail.objects.for_tenant(acme).count() == 1
