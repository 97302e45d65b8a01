"""Licences: revoke / suspend / restore, grants and their expiry, cancel at period end, renewal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from billing.errors import Conflict, InvalidInput
from billing.models import GrantKind, LicenseChange, LicenseStatus
from billing.services import licenses
from billing.signals import license_changed
from tests.billing.factories import make_catalog, make_license


@pytest.fixture
def held(world_a):
    catalog = make_catalog(world_a.tenant)
    return world_a, catalog, make_license(world_a.account, catalog.prices["team-month"], seats=2)


@pytest.fixture
def signals():
    received = []

    def receiver(sender, signal, **kwargs):
        received.append(kwargs)

    license_changed.connect(receiver)
    yield received
    license_changed.disconnect(receiver)


def test_revoke_then_restore_returns_the_previous_status_with_reasons_audited(
    held, signals, django_capture_on_commit_callbacks
):
    world, _, license = held
    csm = world.staff["csm"]
    with django_capture_on_commit_callbacks(execute=True):
        licenses.revoke_license(world.tenant, license=license, actor=csm, reason="Chargeback opened")
    license.refresh_from_db()
    assert (license.status, license.held_from_status, license.status_reason, license.mrr) == (
        LicenseStatus.CANCELED,
        LicenseStatus.ACTIVE,
        "Chargeback opened",
        0,  # nothing is collected while revoked
    )
    with django_capture_on_commit_callbacks(execute=True):
        licenses.restore_license(world.tenant, license=license, actor=csm, reason="Chargeback won")
    license.refresh_from_db()
    assert (license.status, license.held_from_status, license.mrr) == (LicenseStatus.ACTIVE, "", 2 * 2900)
    kinds = list(LicenseChange.objects.filter(license=license).order_by("id").values_list("kind", "reason"))
    assert kinds == [("revoke", "Chargeback opened"), ("restore", "Chargeback won")]
    actions = set(AuditEntry.objects.filter(tenant=world.tenant).values_list("action", flat=True))
    assert {"license.revoked", "license.restored"} <= actions
    assert signals == [{"tenant_id": world.tenant.pk, "account_id": world.account.pk}] * 2


def test_suspend_needs_a_reason_and_cannot_stack_and_restore_needs_a_hold(held):
    world, _, license = held
    with pytest.raises(InvalidInput):
        licenses.suspend_license(world.tenant, license=license, actor="t", reason=" ")
    with pytest.raises(Conflict):
        licenses.restore_license(world.tenant, license=license, actor="t", reason="nothing to restore")
    licenses.suspend_license(world.tenant, license=license, actor="t", reason="Unpaid")
    with pytest.raises(Conflict):
        licenses.revoke_license(world.tenant, license=license, actor="t", reason="again")
    license.refresh_from_db()
    assert license.status == LicenseStatus.SUSPENDED


def test_a_trial_grant_ends_by_itself_at_its_end_and_the_sweep_is_idempotent(
    held, signals, django_capture_on_commit_callbacks
):
    world, catalog, license = held
    grant = licenses.start_grant(
        world.tenant,
        account=world.account,
        kind=GrantKind.TRIAL,
        tier=catalog.tiers["business"],
        days=14,
        actor=world.staff["csm"],
        reference="trial:7",
    )
    assert grant.is_active_at(timezone.now())
    assert licenses.expire_grants(now=timezone.now() + timedelta(days=13)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert licenses.expire_grants(now=timezone.now() + timedelta(days=15)) == 1
    assert licenses.expire_grants(now=timezone.now() + timedelta(days=16)) == 0
    grant.refresh_from_db()
    assert grant.ended_at == grant.ends_at
    license.refresh_from_db()
    assert (license.tier.key, license.status) == ("team", LicenseStatus.ACTIVE)  # the paid plan is untouched
    assert AuditEntry.objects.filter(action="license_grant.expired", object_id=str(grant.pk)).count() == 1
    assert signals[-1] == {"tenant_id": world.tenant.pk, "account_id": world.account.pk}


def test_grants_are_validated_and_never_cross_tenants(held, world_b):
    world, catalog, _ = held
    other = make_catalog(world_b.tenant)
    with pytest.raises(InvalidInput) as excinfo:
        licenses.start_grant(
            world.tenant, account=world.account, kind=GrantKind.TRIAL, tier=other.tiers["business"], days=14, actor="t"
        )
    assert "tier" in excinfo.value.details
    with pytest.raises(InvalidInput) as excinfo:
        licenses.start_grant(
            world.tenant,
            account=world.account,
            kind=GrantKind.CSM_GRANT,
            tier=catalog.tiers["business"],
            days=400,
            actor="t",
        )
    assert "ends_at" in excinfo.value.details
    licenses.start_grant(
        world.tenant, account=world.account, kind=GrantKind.TRIAL, tier=catalog.tiers["business"], days=7, actor="t"
    )
    with pytest.raises(Conflict):
        licenses.start_grant(
            world.tenant, account=world.account, kind=GrantKind.TRIAL, tier=catalog.tiers["business"], days=7, actor="t"
        )


def test_a_multi_year_term_renews_with_the_loyalty_discount_in_its_mrr(held):
    world, catalog, license = held
    license.term_years = 3
    license.commitment_ends_at = timezone.now()
    license.save()
    renewed = licenses.renew_license_term(
        world.tenant, license=license, actor="system", loyalty_percent=Decimal("5.00")
    )
    assert renewed.commitment_ends_at.year == timezone.now().year + 3
    assert renewed.mrr == 2 * 2900 - 290  # 5 % of 5,800
    change = LicenseChange.objects.get(license=license, kind="renewal")
    assert (change.mrr_before, change.mrr_after) == (5800, 5510)
    with pytest.raises(Conflict):
        licenses.renew_license_term(world.tenant, license=renewed, actor="system")


def test_the_renewal_sweep_renews_only_ended_terms_once(held):
    world, _, license = held
    license.term_years = 2
    license.commitment_ends_at = timezone.now() - timedelta(hours=1)
    license.save()
    assert licenses.renew_due_terms() == 1
    assert licenses.renew_due_terms() == 0
    assert LicenseChange.objects.filter(license=license, kind="renewal").count() == 1


def test_an_ended_subscription_takes_mrr_to_zero_once(held):
    world, _, license = held
    licenses.end_license(world.tenant, license=license, actor="stripe", reason="Canceled at period end")
    licenses.end_license(world.tenant, license=license, actor="stripe", reason="again")
    license.refresh_from_db()
    assert (license.status, license.mrr) == (LicenseStatus.CANCELED, 0)
    change = LicenseChange.objects.get(license=license, kind="cancel")
    assert (change.mrr_before, change.mrr_after) == (5800, 0)


def test_billing_counts_licence_holders_for_catalog_retirement(held):
    world, catalog, license = held
    from catalog.hooks import count_holders

    assert count_holders(world.tenant, [catalog.tiers["team"].pk]) == 1
    licenses.revoke_license(world.tenant, license=license, actor="t", reason="fraud")
    assert count_holders(world.tenant, [catalog.tiers["team"].pk]) == 0
