"""As the app role, the database keeps tenants apart even where the ORM filter is switched off."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from accounts.models import ApiKey, Contact, CustomerAccount
from accounts.tenancy import TenantQuerySet, tenant_context
from tests.conftest import TenantWorld

from .conftest import APP_PASSWORD, APP_ROLE
from .urls import tenant_owned_models

pytestmark = [pytest.mark.integration]

PROBE = "/rls-probe/api/"


def visible(model) -> set:
    return set(model._base_manager.all().values_list("tenant_id", flat=True))


def test_with_no_tenant_set_every_tenant_owned_table_looks_empty(two_tenants, as_app_role):
    a, b = two_tenants
    for model in tenant_owned_models():  # autocommit: each statement its own transaction
        assert visible(model) <= {None}, model._meta.label
    with transaction.atomic():
        assert CustomerAccount.objects.count() == 0
        with tenant_context(a.tenant):
            assert visible(CustomerAccount) == {a.tenant.pk}
        assert CustomerAccount.objects.count() == 0  # the context ended inside the same transaction
    with tenant_context(b.tenant):
        assert visible(CustomerAccount) == {b.tenant.pk}
        assert visible(Contact) == {b.tenant.pk}


def test_the_tenant_follows_the_context_within_one_transaction_and_survives_a_savepoint_rollback(
    two_tenants, as_app_role
):
    a, b = two_tenants
    with transaction.atomic(), tenant_context(a.tenant):
        try:
            with transaction.atomic():  # the tenant is first set inside this savepoint...
                assert visible(CustomerAccount) == {a.tenant.pk}
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        assert visible(CustomerAccount) == {a.tenant.pk}  # ...and set again after its rollback undid it
        with tenant_context(b.tenant):
            assert visible(CustomerAccount) == {b.tenant.pk}
        assert visible(CustomerAccount) == {a.tenant.pk}


def test_a_row_for_another_tenant_cannot_be_written_or_changed(two_tenants, as_app_role):
    a, b = two_tenants
    with tenant_context(a.tenant):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            CustomerAccount.objects.create(tenant=b.tenant, external_id="planted", name="Planted")
        assert CustomerAccount.objects.filter(pk=b.account.pk).update(name="Taken") == 0
        assert CustomerAccount.objects.filter(pk=b.account.pk).delete()[0] == 0
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        ApiKey.objects.create(tenant=a.tenant, name="no tenant set", prefix="nope", hashed_secret="x")
    with tenant_context(b.tenant):
        assert CustomerAccount.objects.get(pk=b.account.pk).name == b.account.name


def _alternate(clients: list[tuple[TenantWorld, APIClient]], n: int, seen: list, errors: list, pids: list) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        for i in range(n):
            world, client = clients[i % 2]
            if i % 4 == 3:  # a real endpoint, its selector's for_tenant() switched off
                response = client.get("/api/v1/accounts?page_size=500")
                assert response.status_code == 200, response.content
                names = {row["name"] for row in response.json()["results"]}
                seen.append((world.tenant.pk, names == {world.account.name}))
                continue
            response = client.get(PROBE)
            assert response.status_code == 200, response.content
            tenants = {t for ids in response.json().values() for t in ids} - {None}  # platform rows: no tenant
            seen.append((world.tenant.pk, tenants == {world.tenant.pk}))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


def _two_thousand_requests(two_tenants, connect_as, monkeypatch, settings, **target) -> list[list[int]]:
    a, b = two_tenants
    settings.ROOT_URLCONF = "tests.tenancy.urls"
    clients = [(a, a.api("read")), (b, b.api("read"))]
    monkeypatch.setattr(TenantQuerySet, "for_tenant", lambda self, tenant: self.all())  # the ORM filter off

    # As the superuser (no row-level security) the probe does see the other tenant: the test can fail.
    response = clients[0][1].get(PROBE)
    assert {t for ids in response.json().values() for t in ids} - {None} == {a.tenant.pk, b.tenant.pk}

    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD, CONN_MAX_AGE=None, **target)  # persistent connections
    results: list[list] = [[], []]
    errors: list = []
    pids: list[list[int]] = [[], []]
    threads = [
        threading.Thread(
            target=_alternate, args=(clients if i == 0 else clients[::-1], 1000, results[i], errors, pids[i])
        )
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    answers = results[0] + results[1]
    assert len(answers) == 2000
    assert {tenant for tenant, _ in answers} == {a.tenant.pk, b.tenant.pk}
    leaked = [tenant for tenant, only_own in answers if not only_own]
    assert leaked == [], f"{len(leaked)} of 2,000 answers showed another tenant's rows"
    return pids


def test_2000_requests_alternating_two_tenants_over_two_persistent_connections_see_no_other_tenants_rows(
    two_tenants, connect_as, monkeypatch, settings
):
    pids = _two_thousand_requests(two_tenants, connect_as, monkeypatch, settings)
    # Each thread kept its one connection from the first request to the last, and they were two.
    assert len(set(pids[0])) == 1 and len(set(pids[1])) == 1 and pids[0][0] != pids[1][0]


def test_2000_requests_alternating_two_tenants_through_pgbouncer_in_transaction_mode_see_no_other_tenants_rows(
    two_tenants, connect_as, monkeypatch, settings, pgbouncer
):
    pids = _two_thousand_requests(two_tenants, connect_as, monkeypatch, settings, HOST="127.0.0.1", PORT=str(pgbouncer))
    # One server connection served both clients' transactions: a per-connection tenant would have leaked.
    assert len(set(pids[0] + pids[1])) == 1


def test_a_platform_row_written_from_inside_a_tenant_is_stored_and_visible_only_outside_every_tenant(
    two_tenants, as_app_role
):
    from accounts.models import AuditEntry
    from accounts.services import record_audit

    a, b = two_tenants
    with tenant_context(a.tenant), transaction.atomic():
        record_audit(None, actor="platform", action="platform.checked")  # e.g. mail sent for no tenant
        record_audit(a.tenant, actor="test", action="tenant.checked")
        assert not AuditEntry.objects.filter(action="platform.checked").exists()
        assert AuditEntry.objects.filter(action="tenant.checked").count() == 1
    assert AuditEntry.objects.filter(action="platform.checked").count() == 1
    assert not AuditEntry.objects.filter(action="tenant.checked").exists()
    with tenant_context(b.tenant):
        assert not AuditEntry.objects.filter(action__in=["platform.checked", "tenant.checked"]).exists()
