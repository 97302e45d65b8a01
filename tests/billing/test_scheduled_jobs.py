"""The beat jobs (grant expiry, renewals, due plan changes, stale reconciliation) move the due rows of every
tenant and leave the not-yet-due rows alone (the webhook sweep has its own test in test_webhook_retries.py).

Each tenant gets a due and a not-yet-due row; the licences involved have no Stripe subscription, so the jobs
run their whole path here without Stripe.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import CustomerAccount
from billing.models import LicenseChange, LicenseGrant, LicenseStatus, PlanChange, PlanChangeKind, PlanChangeState
from billing.proration import add_interval
from billing.services import licenses, plan_changes
from tests.billing.factories import configure_stripe, make_catalog, make_license


@pytest.fixture
def worlds(two_tenants):
    """Per tenant: its catalog and two accounts (`due`, `later`) on Business monthly, 3 seats."""
    out = {}
    for world in two_tenants:
        catalog = make_catalog(world.tenant)
        later = CustomerAccount.objects.create(tenant=world.tenant, external_id="acct-2", name="Later Ltd")
        out[world.tenant.slug] = {
            "world": world,
            "catalog": catalog,
            "due": make_license(world.account, catalog.prices["business-month"]),
            "later": make_license(later, catalog.prices["business-month"]),
        }
    return out


def test_grant_expiry_ends_only_the_grants_past_their_end_in_each_tenant(worlds):
    now = timezone.now()
    grants = {}
    for slug, w in worlds.items():
        for name, ends in (("due", now - timedelta(minutes=1)), ("later", now + timedelta(days=1))):
            grants[slug, name] = LicenseGrant.objects.create(
                tenant=w["world"].tenant,
                account=w[name].account,
                kind="trial",
                addon=w["catalog"].addons["sso"],
                starts_at=now - timedelta(days=14),
                ends_at=ends,
            )

    assert licenses.expire_grants(now=now) == 2

    for (_, name), grant in grants.items():
        grant.refresh_from_db()
        assert (grant.ended_at == grant.ends_at) if name == "due" else grant.ended_at is None


def test_renewal_renews_only_the_terms_that_ended_in_each_tenant(worlds):
    now = timezone.now().replace(microsecond=0)
    ends = {"due": now - timedelta(hours=1), "later": now + timedelta(days=30)}
    for w in worlds.values():
        for name, end in ends.items():
            w[name].term_years, w[name].commitment_ends_at = 2, end
            w[name].save(update_fields=["term_years", "commitment_ends_at"])

    assert licenses.renew_due_terms(now=now) == 2

    for w in worlds.values():
        due, later = (type(w["due"]).objects.get(pk=w[name].pk) for name in ("due", "later"))
        assert due.commitment_ends_at == add_interval(ends["due"], "year", 2)
        assert later.commitment_ends_at == ends["later"]
        assert list(LicenseChange.objects.filter(license=due).values_list("kind", flat=True)) == ["renewal"]
        assert not LicenseChange.objects.filter(license=later).exists()


def _scheduled_downgrade(w, name: str, *, effective_at) -> PlanChange:
    license = w[name]
    return PlanChange.objects.create(
        tenant=w["world"].tenant,
        license=license,
        account=license.account,
        kind=PlanChangeKind.DOWNGRADE,
        state=PlanChangeState.SCHEDULED,
        from_price=license.price,
        from_seats=license.seats,
        target_price=w["catalog"].prices["team-month"],
        target_seats=license.seats,
        quote_expires_at=timezone.now() + timedelta(minutes=30),
        effective_at=effective_at,
        idempotency_key=f"tw-{license.tenant_id}-plan-change-{license.pk}",
    )


def test_due_plan_changes_settle_only_the_downgrades_whose_period_ended_in_each_tenant(worlds):
    now = timezone.now()
    changes = {
        (slug, name): _scheduled_downgrade(w, name, effective_at=now + offset)
        for slug, w in worlds.items()
        for name, offset in (("due", -timedelta(seconds=1)), ("later", timedelta(days=3)))
    }

    assert plan_changes.apply_due_plan_changes(now=now) == 2

    for (slug, name), change in changes.items():
        change.refresh_from_db()
        license = worlds[slug][name]
        license.refresh_from_db()
        if name == "due":
            assert change.state == PlanChangeState.SETTLED
            assert (license.tier.key, license.mrr) == ("team", 8_700)
        else:
            assert change.state == PlanChangeState.SCHEDULED
            assert (license.tier.key, license.mrr) == ("business", 29_700)


def test_stale_reconciliation_takes_up_only_changes_stuck_past_the_grace_in_each_tenant(worlds):
    """Changes whose task died (still `pending`): the sweep runs their task again. Here the licence was suspended
    meanwhile, so the rerun abandons the change without charging; the fresh ones are left to their own task."""
    changes = {}
    for slug, w in worlds.items():
        configure_stripe(w["world"].tenant)  # keys, never called: nothing is sent for a held licence
        for name in ("due", "later"):
            licenses.suspend_license(w["world"].tenant, license=w[name], actor="csm", reason="Dispute")
            change = _scheduled_downgrade(w, name, effective_at=None)
            PlanChange.objects.filter(pk=change.pk).update(
                state=PlanChangeState.PENDING,
                kind=PlanChangeKind.UPGRADE,
                updated_at=timezone.now() - (timedelta(minutes=10) if name == "due" else timedelta(seconds=10)),
            )
            changes[slug, name] = change

    assert plan_changes.reconcile_stale_plan_changes() == 2

    for (slug, name), change in changes.items():
        change.refresh_from_db()
        if name == "due":
            assert (change.state, change.failure_code) == (PlanChangeState.CANCELED, "license_held")
        else:
            assert change.state == PlanChangeState.PENDING
        license = worlds[slug][name]
        license.refresh_from_db()
        assert (license.status, license.tier.key, license.mrr) == (LicenseStatus.SUSPENDED, "business", 0)
