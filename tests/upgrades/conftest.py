"""Two look-alike tenants with a catalog, licences, a trial, plan changes, a pending catalog change
and audit entries: enough for the staff workspace to have something true to say about each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import CustomerAccount, LifecycleStage, Membership, Role, User
from accounts.services import record_audit
from billing.models import GrantKind, License, LicenseStatus, PlanChange, PlanChangeKind, PlanChangeState
from billing.services.licenses import start_grant
from catalog import services as catalog_services
from catalog.models import Price, Tier
from tests.billing.factories import make_license
from tests.catalog.factories import Ladder, build_ladder, make_tier
from tests.conftest import TenantWorld


@dataclass
class Workspace:
    world: TenantWorld
    ladder: Ladder
    accounts: dict[str, CustomerAccount]
    licences: dict[str, License] = field(default_factory=dict)
    pending: Tier | None = None
    plan_change: PlanChange | None = None


def price(tier: Tier, interval: str) -> Price:
    return Price.objects.get(tier=tier, interval=interval)


def account(world: TenantWorld, external_id: str, name: str, stage: str) -> CustomerAccount:
    return CustomerAccount.objects.create(
        tenant=world.tenant, external_id=external_id, name=name, lifecycle_stage=stage
    )


def make_plan_change(license: License, *, target: Price, state: str, due: int, kind: str = PlanChangeKind.UPGRADE):
    now = timezone.now()
    return PlanChange.objects.create(
        tenant_id=license.tenant_id,
        license=license,
        account=license.account,
        kind=kind,
        state=state,
        from_price=license.price,
        from_seats=license.seats,
        target_price=target,
        target_seats=license.seats,
        currency=target.currency,
        quote_amount_due=due,
        quote_total=due,
        quote_expires_at=now + timedelta(hours=1),
        settled_at=now if state == PlanChangeState.SETTLED else None,
        charged_amount=due if state == PlanChangeState.SETTLED else None,
    )


def submit_new_tier(world: TenantWorld, ladder: Ladder, *, author: User, name: str) -> Tier:
    """A Scale tier drafted and submitted by `author`: awaiting a second person's approval."""
    tier = make_tier(
        world.tenant,
        author,
        product=ladder.product,
        key="scale",
        rank=40,
        monthly=19_900,
        annual=199_000,
        name=name,
        grants={ladder.api_calls: None, ladder.seats: None, ladder.sso: True},
    )
    return catalog_services.submit_for_approval(world.tenant, obj=tier, actor=author).obj


@pytest.fixture
def workspace_a(world_a: TenantWorld) -> Workspace:
    """Tenant A: MRR $390.00 over 3 licences in force (Team x2, Business x1) and one canceled licence.

    acct-1 Team monthly 3 seats = 8,700; acct-2 Business monthly 2 seats = 15,800;
    acct-3 Team annual 6 seats = 29,000 * 6 / 12 = 14,500; acct-4 canceled (not in the MRR).
    """
    world = world_a
    ladder = build_ladder(world)
    accounts = {
        "acct-1": world.account,  # active
        "acct-2": account(world, "acct-2", "Alpha Trial Co", LifecycleStage.TRIAL),
        "acct-3": account(world, "acct-3", "Alpha Risky Co", LifecycleStage.AT_RISK),
        "acct-4": account(world, "acct-4", "Alpha Gone Co", LifecycleStage.AT_RISK),
    }
    ws = Workspace(world=world, ladder=ladder, accounts=accounts)
    ws.licences["acct-1"] = make_license(accounts["acct-1"], price(ladder.team, "month"), seats=3)
    ws.licences["acct-2"] = make_license(accounts["acct-2"], price(ladder.business, "month"), seats=2)
    ws.licences["acct-3"] = make_license(accounts["acct-3"], price(ladder.team, "year"), seats=6)
    ws.licences["acct-4"] = make_license(
        accounts["acct-4"], price(ladder.team, "month"), seats=1, status=LicenseStatus.CANCELED
    )
    start_grant(
        world.tenant,
        account=accounts["acct-1"],
        kind=GrantKind.TRIAL,
        actor=world.staff[Role.CSM],
        tier=ladder.business,
        days=14,
        reason="Trial of Business",
    )
    ws.plan_change = make_plan_change(
        ws.licences["acct-1"], target=price(ladder.business, "month"), state=PlanChangeState.SETTLED, due=4_321
    )
    ws.pending = submit_new_tier(world, ladder, author=world.staff[Role.PRODUCT_MANAGER], name="Scale")
    return ws


@pytest.fixture
def workspace_b(world_b: TenantWorld) -> Workspace:
    """Tenant B: Team and Business licences of 50 seats each ($5,400.00 MRR), a churned account, a failed change."""
    world = world_b
    ladder = build_ladder(world, prefix="Bee ")
    accounts = {
        "acct-1": world.account,
        "acct-9": account(world, "acct-9", "Bee Churned Co", LifecycleStage.CHURNED),
    }
    ws = Workspace(world=world, ladder=ladder, accounts=accounts)
    ws.licences["acct-1"] = make_license(accounts["acct-1"], price(ladder.team, "month"), seats=50)
    ws.licences["acct-9"] = make_license(accounts["acct-9"], price(ladder.business, "month"), seats=50)
    ws.plan_change = make_plan_change(
        ws.licences["acct-1"], target=price(ladder.business, "month"), state=PlanChangeState.FAILED, due=987_654
    )
    ws.pending = submit_new_tier(world, ladder, author=world.staff[Role.PRODUCT_MANAGER], name="Bee Scale")
    record_audit(world.tenant, actor="bee-robot", action="bee.secret_happened", obj=world.account)
    return ws


@pytest.fixture
def workspaces(workspace_a: Workspace, workspace_b: Workspace) -> tuple[Workspace, Workspace]:
    return workspace_a, workspace_b


@pytest.fixture
def second_pm(world_a: TenantWorld) -> User:
    """Another product manager of tenant A: may approve what the first one wrote."""
    user = User.objects.create_user("pm2@tenant-a.test", "pw-for-tests-123", full_name="Second PM")
    Membership.objects.create(tenant=world_a.tenant, user=user, role=Role.PRODUCT_MANAGER)
    return user
