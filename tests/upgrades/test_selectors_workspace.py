"""upgrades.selectors.workspace_overview: the numbers of the signed-in tenant, and nothing of another."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import LifecycleStage, Membership, Role, User
from billing.models import License, PlanChangeState
from catalog import services as catalog_services
from catalog.models import GovernanceState
from tests.upgrades.conftest import make_plan_change, price
from upgrades import selectors

pytestmark = pytest.mark.django_db


def overview_for(ws, role=Role.OWNER):
    user = ws.world.staff[role]
    membership = Membership.objects.get(tenant=ws.world.tenant, user=user)
    return selectors.workspace_overview(ws.world.tenant, user=user, membership=membership)


def test_overview_counts_accounts_by_stage_for_the_tenant_only(workspaces):
    a, _ = workspaces
    overview = overview_for(a)
    stages = {s.stage: s.count for s in overview.stages}
    assert stages == {
        LifecycleStage.TRIAL: 1,
        LifecycleStage.ONBOARDING: 0,
        LifecycleStage.ACTIVE: 1,
        LifecycleStage.EXPANSION: 0,
        LifecycleStage.RENEWAL: 0,
        LifecycleStage.AT_RISK: 2,
        LifecycleStage.CHURNED: 0,  # B's churned account is not A's
    }
    assert [s.stage for s in overview.stages] == list(LifecycleStage.values)
    assert overview.accounts_total == 4
    assert {s.stage: s.bar_percent for s in overview.stages}[LifecycleStage.AT_RISK] == 100
    assert {s.stage: s.bar_percent for s in overview.stages}[LifecycleStage.TRIAL] == 50


def test_overview_sums_mrr_of_licences_in_force_by_tier(workspaces):
    a, _ = workspaces
    overview = overview_for(a)
    rows = {(t.tier.key, t.tier.tenant_id): (t.licences, t.seats, t.mrr) for t in overview.tiers}
    tenant_id = a.world.tenant.pk
    assert rows == {
        ("team", tenant_id): (2, 9, 8_700 + 14_500),  # monthly 3 seats + annual 6 seats (29,000 * 6 / 12)
        ("business", tenant_id): (1, 2, 15_800),
    }
    assert [t.tier.key for t in overview.tiers] == ["team", "business"]  # by rank
    assert overview.primary_mrr == selectors.MoneyTotal(amount=39_000, currency="USD")
    assert overview.other_mrr == []
    assert overview.licences_holding == 3
    assert overview.licences_not_holding == 1  # the canceled licence is counted apart, outside the MRR


def test_mrr_of_another_currency_is_shown_apart_never_added(workspaces):
    a, _ = workspaces
    License.objects.filter(pk=a.licences["acct-2"].pk).update(currency="EUR")
    overview = overview_for(a)
    assert overview.mrr == [
        selectors.MoneyTotal(amount=23_200, currency="USD"),
        selectors.MoneyTotal(amount=15_800, currency="EUR"),
    ]


def test_tenant_without_licences_shows_zero_in_its_own_currency(world_a):
    world_a.tenant.default_currency = "EUR"
    world_a.tenant.save()
    overview = selectors.workspace_overview(
        world_a.tenant, user=world_a.staff[Role.ANALYST], membership=world_a.tenant.memberships.get(role=Role.ANALYST)
    )
    assert overview.mrr == [selectors.MoneyTotal(amount=0, currency="EUR")]
    assert overview.tiers == [] and overview.pending == [] and overview.plan_changes == []
    assert overview.trial is None and overview.settled_upgrade is None


def test_pending_approvals_follow_the_four_eyes_rule(workspaces, second_pm):
    a, b = workspaces
    tenant = a.world.tenant

    def pending_for(user):
        membership = Membership.objects.filter(tenant=tenant, user=user).first()
        return selectors.pending_approvals(tenant, user=user, membership=membership)

    author = pending_for(a.world.staff[Role.PRODUCT_MANAGER])
    assert [p.item for p in author] == [a.pending]  # B's pending tier is not listed
    assert author[0].can_approve is False and "You wrote" in author[0].reason
    assert pending_for(second_pm)[0].can_approve is True
    assert pending_for(a.world.staff[Role.OWNER])[0].can_approve is True  # owners may approve anything
    for role in (Role.ANALYST, Role.CSM):
        (item,) = pending_for(a.world.staff[role])
        assert item.can_approve is False and "product manager or an owner" in item.reason


def test_an_approved_item_is_ready_to_publish_not_to_approve(workspace_a, second_pm):
    a = workspace_a
    catalog_services.approve(a.world.tenant, obj=a.pending, actor=second_pm)
    membership = Membership.objects.get(tenant=a.world.tenant, user=second_pm)
    (item,) = selectors.pending_approvals(a.world.tenant, user=second_pm, membership=membership)
    assert item.ready_to_publish and not item.can_approve and item.can_publish
    analyst = a.world.staff[Role.ANALYST]
    (seen,) = selectors.pending_approvals(
        a.world.tenant, user=analyst, membership=Membership.objects.get(tenant=a.world.tenant, user=analyst)
    )
    assert seen.ready_to_publish and not seen.can_publish
    a.pending.refresh_from_db()
    assert a.pending.state == GovernanceState.AWAITING_APPROVAL


def test_recent_plan_changes_trial_and_settled_upgrade_are_the_tenants_own(workspaces):
    a, b = workspaces
    overview = overview_for(a)
    assert overview.plan_changes == [a.plan_change]
    assert overview.settled_upgrade == a.plan_change
    assert overview.trial is not None and overview.trial.license == a.licences["acct-1"]
    assert overview.plan_changes_open == 0
    b_overview = overview_for(b)
    assert b_overview.plan_changes == [b.plan_change] and b_overview.settled_upgrade is None
    assert b_overview.trial is None


def test_recent_audit_entries_are_the_tenants_own(workspaces):
    a, b = workspaces
    actions = {e.action for e in overview_for(a).audit}
    assert "bee.secret_happened" not in actions
    assert all(e.tenant_id == a.world.tenant.pk for e in overview_for(a).audit)
    assert overview_for(b).audit[0].action == "bee.secret_happened"


def test_overview_reads_in_a_fixed_number_of_queries(workspace_a, second_pm):
    a = workspace_a

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            overview_for(a)
        return len(queries)

    before = count()
    for i in range(4):
        make_plan_change(
            a.licences["acct-2"],
            target=price(a.ladder.team, "month"),
            state=PlanChangeState.CANCELED,
            due=100 + i,
        )
    assert count() == before


def test_demo_logins_list_the_demo_tenants_staff_with_what_to_try(db):
    from accounts.demo import seed_tenant

    assert selectors.demo_logins() == []
    seed_tenant(slug="acme", name="Acme", domain="acme.test", account_count=2, seed=1)
    logins = selectors.demo_logins()
    assert [login.email for login in logins] == [
        "owner@acme.test",
        "pm2@acme.test",
        "pm@acme.test",
        "csm@acme.test",
        "analyst@acme.test",
    ]
    assert logins[0].role == "Owner" and "API keys" in logins[0].hint
    assert User.objects.filter(email="analyst@acme.test").exists()
