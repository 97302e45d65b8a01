"""A tenant with the usage test catalog (Free < Team < Business; API calls, storage, active users),
accounts on licences, and helpers to write rollups and events straight into the tables the rules read."""

from __future__ import annotations

import datetime
import itertools

import pytest

from accounts.models import CustomerAccount, Role
from billing.models import LicenseChange
from tests.conftest import TenantWorld
from tests.usage.factories import Catalog, give_license, make_catalog
from upgrades.rules import services
from upgrades.rules.models import TriggerRule
from usage.models import Event, UsageDistinctValue, UsageRollup

NOW = datetime.datetime(2026, 11, 20, 15, 0, tzinfo=datetime.UTC)
_keys = itertools.count(1)


def rollup(account: CustomerAccount, meter, day: datetime.date, value: int) -> None:
    UsageRollup.objects.update_or_create(
        tenant_id=account.tenant_id, account=account, meter=meter, day=day,
        defaults={"value": value, "event_count": value},
    )  # fmt: skip


def distinct(account: CustomerAccount, meter, day: datetime.date, *values: str) -> None:
    for v in values:
        UsageDistinctValue.objects.get_or_create(
            tenant_id=account.tenant_id, account=account, meter=meter, day=day, value=v
        )


def add_event(account: CustomerAccount, name: str, at: datetime.datetime, **properties) -> Event:
    return Event.objects.create(
        tenant_id=account.tenant_id, account=account, event=name, occurred_at=at, idempotency_key=f"t-{next(_keys)}",
        properties=properties,
    )  # fmt: skip


def upgraded(account: CustomerAccount, at: datetime.datetime) -> LicenseChange:
    """The account upgraded at `at` (more MRR after than before): what suggestions learn from."""
    return LicenseChange.objects.create(tenant=account.tenant, account=account, kind="upgrade", actor_label="t",
                                        mrr_before=1, mrr_after=2, effective_at=at)  # fmt: skip


def live_rule(
    world: TenantWorld, *, key: str, condition: dict, kind: str = "upgrade_opportunity", **fields
) -> TriggerRule:
    """A rule drafted by the PM and approved by the owner (four eyes): live."""
    pm, owner = world.staff[Role.PRODUCT_MANAGER], world.staff[Role.OWNER]
    rule = services.create_rule(world.tenant, actor=pm, key=key, name=key.replace("-", " ").title(),
                                condition=condition, signal_kind=kind, **fields)  # fmt: skip
    rule = services.submit_rule(world.tenant, rule=rule, actor=pm)
    return services.approve_rule(world.tenant, rule=rule, actor=owner)


@pytest.fixture
def cat_a(world_a: TenantWorld) -> Catalog:
    catalog = make_catalog(world_a.tenant)
    give_license(world_a.account, catalog.team, now=NOW, seats=5)
    return catalog


@pytest.fixture
def cat_b(world_b: TenantWorld) -> Catalog:
    catalog = make_catalog(world_b.tenant)
    give_license(world_b.account, catalog.team, now=NOW, seats=5)
    return catalog
