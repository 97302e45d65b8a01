"""The billing demo seed: licences over the published tiers, a trial in progress, a settled upgrade; idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.demo import seed_tenant
from accounts.models import AuditEntry
from billing.demo import seed_billing
from billing.models import License, LicenseGrant, PlanChange, PlanChangeState, StripeAccount
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


def same_instant(logged: str, actual: datetime) -> bool:
    """The audit log keeps instants to the millisecond (DjangoJSONEncoder)."""
    return abs(parse_datetime(logged) - actual) < timedelta(milliseconds=1)


def test_the_demo_trial_has_one_story_in_the_audit_log_and_on_the_licence(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, _ = seed()
    grant = LicenseGrant.objects.get(tenant=demo.tenant, reference="demo-trial")
    started = AuditEntry.objects.get(tenant=demo.tenant, action="license_grant.started", object_id=str(grant.pk))
    backdated = AuditEntry.objects.get(tenant=demo.tenant, action="license_grant.backdated", object_id=str(grant.pk))
    # The end the audit log recorded is the end the licence page shows.
    assert same_instant(started.after["ends_at"], grant.ends_at)
    assert same_instant(backdated.after["ends_at"], grant.ends_at)
    # The start was moved back, and the log says so: from when the service started it to five days earlier.
    assert backdated.before["starts_at"] == started.after["starts_at"]
    assert same_instant(backdated.after["starts_at"], grant.starts_at)
    assert timedelta(days=4) < timezone.now() - grant.starts_at <= timedelta(days=5, minutes=1)
    assert timedelta(days=13, hours=23) < grant.ends_at - grant.starts_at <= timedelta(days=14)
    local_end = timezone.localtime(grant.ends_at, ZoneInfo(demo.tenant.time_zone))
    assert f"until {local_end:%Y-%m-%d}" in started.object_repr


def test_no_demo_licence_opens_with_its_period_already_over(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, _ = seed(accounts=40)
    now = timezone.now()
    for license in License.objects.filter(tenant=demo.tenant):
        assert license.current_period_start <= now < license.current_period_end, license


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_with_the_stand_in_the_seed_subscribes_paid_licences_and_settles_a_showcase_upgrade(standin):
    demo, _ = seed(accounts=20)
    paid = License.objects.filter(tenant=demo.tenant, price__amount__gt=0)
    assert paid.exists() and not paid.filter(stripe_subscription_id="").exists()
    upgrade = PlanChange.objects.get(tenant=demo.tenant, reference="demo-upgrade")
    assert upgrade.state == PlanChangeState.SETTLED and upgrade.stripe_invoice_id and upgrade.charge_mismatch == {}
    # The portal's card entry works in the demo: the stand-in's publishable key of the tenant's secret key.
    assert StripeAccount.objects.get(tenant=demo.tenant).publishable_key == f"pk_test_demo_{demo.tenant.slug}"
    StripeAccount.objects.filter(tenant=demo.tenant).update(publishable_key="")  # a user cleared it
    seed(accounts=20)
    assert PlanChange.objects.filter(reference="demo-upgrade").count() == 1
    assert StripeAccount.objects.get(tenant=demo.tenant).publishable_key == f"pk_test_demo_{demo.tenant.slug}"
