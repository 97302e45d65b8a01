"""Restarting `make run` after people used the demo changes nothing, and the demo's numbers add up.

`seed_demo` runs, pm2@ approves and publishes the pending Team v2 (as the demo invites them to),
`seed_demo` runs again: no Team v3, no new rows, no audit entry in anyone's name but pm2's own.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import AuditEntry, Tenant, User
from billing.models import License, LicenseGrant, PlanChange
from catalog import services
from catalog.models import AddOn, Bundle, DiscountPolicy, Entitlement, FeatureKind, GovernanceState, Price, Tier

pytestmark = pytest.mark.django_db

MODELS = (Tier, Price, Entitlement, AddOn, Bundle, DiscountPolicy, License, LicenseGrant, PlanChange, AuditEntry)


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--accounts", "40", stdout=out)
    return out.getvalue()


def picture() -> dict:
    return {
        "counts": {m.__name__: m.objects.count() for m in MODELS},
        "versions": sorted(Tier.objects.values_list("tenant__slug", "key", "version", "state")),
        "actors": sorted(set(AuditEntry.objects.values_list("actor_label", flat=True))),
        "people": sorted(set(AuditEntry.objects.exclude(actor=None).values_list("actor__email", flat=True))),
    }


def test_seed_publish_team_v2_as_pm2_and_seed_again_changes_nothing():
    seed()
    acme = Tenant.objects.get(slug="acme")
    # The seed credits no person in the audit log: only system actors.
    assert picture()["people"] == []
    assert "demo-seed" in picture()["actors"]

    pm2 = User.objects.get(email="pm2@acme.test")
    v2 = Tier.objects.for_tenant(acme).get(key="team", version=2)
    assert v2.state == GovernanceState.AWAITING_APPROVAL
    services.approve(acme, obj=v2, actor=pm2, comment="Fine")
    services.publish(acme, obj=v2, actor=pm2)
    after_publish = picture()

    seed()
    assert picture() == after_publish
    assert not Tier.objects.for_tenant(acme).filter(key="team", version=3).exists()
    assert Tier.objects.for_tenant(acme).get(key="team", version=2).state == GovernanceState.PUBLISHED
    # pm2's own approval and publication are the only entries in a person's name.
    assert after_publish["people"] == ["pm2@acme.test"]
    assert set(AuditEntry.objects.filter(actor=pm2).values_list("action", flat=True)) <= {
        "tier.approved",
        "tier.published",
        "tier.retired",
    }


def test_seeding_twice_in_a_row_adds_nothing():
    seed()
    first = picture()
    seed()
    assert picture() == first


def test_no_demo_licence_holds_more_seats_than_its_tier_allows():
    seed()
    limits = {
        e.tier_id: e.limit
        for e in Entitlement.objects.filter(tier__isnull=False, feature__kind=FeatureKind.SEATS, enabled=True)
    }
    licences = list(License.objects.select_related("tier"))
    assert licences
    over = [
        (lic.account_id, lic.tier.key, lic.seats, limits[lic.tier_id])
        for lic in licences
        if limits.get(lic.tier_id) is not None and lic.seats > limits[lic.tier_id]
    ]
    assert over == []
    assert all(lic.seats >= 1 for lic in licences)
