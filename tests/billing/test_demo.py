"""The billing demo seed: licences over the published tiers, a trial in progress, a settled upgrade; idempotent."""

from __future__ import annotations

import pytest

from accounts.demo import seed_tenant
from billing.demo import seed_billing
from billing.models import License, LicenseGrant, PlanChange, PlanChangeState
from catalog.demo import seed_catalogs


def seed(accounts: int = 12):
    demo = seed_tenant(slug="acme", name="Acme", domain="acme.test", account_count=accounts, seed=7)
    other = seed_tenant(slug="globex", name="Globex", domain="globex.test", account_count=5, seed=11)
    seed_catalogs(demo, other)
    seed_billing(demo, other)
    return demo, other


def test_without_stripe_the_seed_gives_every_account_a_licence_once(db, settings, capsys):
    settings.STRIPE_API_BASE = ""
    demo, _ = seed()
    seed()
    assert License.objects.filter(tenant=demo.tenant).count() == 12
    assert License.objects.count() == 17
    assert LicenseGrant.objects.filter(tenant=demo.tenant, reference="demo-trial").count() == 1
    assert "licences only" in capsys.readouterr().out
    assert len({lic.tier.key for lic in License.objects.filter(tenant=demo.tenant)}) >= 2


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_with_the_stand_in_the_seed_subscribes_paid_licences_and_settles_a_showcase_upgrade(standin):
    demo, _ = seed(accounts=20)
    paid = License.objects.filter(tenant=demo.tenant, price__amount__gt=0)
    assert paid.exists() and not paid.filter(stripe_subscription_id="").exists()
    upgrade = PlanChange.objects.get(tenant=demo.tenant, reference="demo-upgrade")
    assert upgrade.state == PlanChangeState.SETTLED and upgrade.stripe_invoice_id and upgrade.charge_mismatch == {}
    seed(accounts=20)
    assert PlanChange.objects.filter(reference="demo-upgrade").count() == 1
