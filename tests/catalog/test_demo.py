"""The demo catalog: complete, governed by two people, idempotent."""

import pytest

from accounts.demo import seed_tenant
from accounts.models import AuditEntry
from catalog import selectors
from catalog.demo import seed_catalogs
from catalog.models import AddOn, Bundle, DiscountPolicy, Entitlement, Feature, GovernanceState, Meter, Price, Tier

pytestmark = pytest.mark.django_db


def counts():
    return {
        m.__name__: m.objects.count() for m in (Tier, Price, Entitlement, AddOn, Bundle, DiscountPolicy, Feature, Meter)
    } | {"audit": AuditEntry.objects.count()}


def test_seed_builds_a_published_catalog_approved_by_a_second_pm_and_is_idempotent():
    demo = seed_tenant(slug="acme", name="Acme Analytics", domain="acme.test", account_count=3, seed=7)
    other = seed_tenant(slug="globex", name="Globex Cloud", domain="globex.test", account_count=2, seed=11)
    seed_catalogs(demo, other)
    first = counts()
    seed_catalogs(demo, other)
    assert counts() == first

    tenant = demo.tenant
    published = list(selectors.list_published_tiers(tenant))
    assert [t.key for t in published] == ["free", "team", "business", "enterprise"]
    assert all(t.created_by.email == "pm@acme.test" and t.approved_by.email == "pm2@acme.test" for t in published)
    assert [t.key for t in published if t.is_anchor] == ["enterprise"]
    assert selectors.get_default_tier(tenant).key == "free"
    pending = Tier.objects.for_tenant(tenant).get(key="team", version=2)
    assert pending.state == GovernanceState.AWAITING_APPROVAL and pending.approved_at is None
    assert AddOn.objects.for_tenant(tenant).filter(state="published").count() == 2
    bundles = Bundle.objects.for_tenant(tenant).filter(state="published")
    assert {b.audience for b in bundles} == {"healthcare", "fintech"} and all(b.scenarios for b in bundles)
    assert selectors.get_discount_policy(tenant).key == "standard"
    assert {m.key for m in Meter.objects.for_tenant(tenant)} == {"api_calls", "projects", "storage", "seats"}
    assert {f.key for f in Feature.objects.for_tenant(tenant)} >= {
        "seats",
        "api_calls",
        "projects",
        "storage",
        "sso",
        "audit_log",
        "priority_support",
    }

    (table,) = selectors.build_pricing_tables(tenant)
    enterprise = next(c for c in table.tiers if c.tier.key == "enterprise")
    assert enterprise.prices.saving.amount == 11_900 * 12 - 114_000
    assert [t.key for t in selectors.list_published_tiers(other.tenant)] == ["free", "pro", "scale"]
