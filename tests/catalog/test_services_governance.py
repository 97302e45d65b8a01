"""Governance: draft -> awaiting approval -> published -> retired, four eyes, immutability, audit."""

import pytest

from accounts.models import AuditEntry, Membership, User
from catalog import hooks, services
from catalog.errors import CatalogErrorCode, Conflict, InvalidInput, PermissionDenied
from catalog.models import Entitlement, GovernanceState, Price, Tier
from tests.catalog.factories import make_tier, publish_through_governance

pytestmark = pytest.mark.django_db


def second_pm(world):
    pm2 = User.objects.create_user(f"pm2@{world.tenant.slug}.test", "pw-for-tests-123")
    Membership.objects.create(tenant=world.tenant, user=pm2, role="product_manager")
    return pm2


@pytest.fixture
def draft(ladder):
    return make_tier(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="scale",
        rank=40,
        monthly=15_900,
        annual=159_000,
        name="Scale",
        grants={ladder.api_calls: None, ladder.seats: None, ladder.sso: True},
    )


def test_a_draft_moves_through_submit_approve_publish_and_every_step_is_audited(ladder, draft, world_a):
    pm, pm2 = ladder.pm, world_a.staff["owner"]
    services.submit_for_approval(ladder.tenant, obj=draft, actor=pm)
    draft.refresh_from_db()
    assert draft.state == GovernanceState.AWAITING_APPROVAL and draft.submitted_by == pm
    services.approve(ladder.tenant, obj=draft, actor=pm2)
    draft.refresh_from_db()
    assert draft.is_approved and draft.status_label == "Approved, ready to publish"
    services.publish(ladder.tenant, obj=draft, actor=pm)
    draft.refresh_from_db()
    assert draft.state == GovernanceState.PUBLISHED and draft.published_at is not None
    assert set(draft.prices.values_list("state", flat=True)) == {GovernanceState.PUBLISHED}

    actions = list(
        AuditEntry.objects.for_tenant(ladder.tenant)
        .filter(object_type="catalog.Tier", object_id=str(draft.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["tier.submitted", "tier.approved", "tier.published"]
    published = AuditEntry.objects.for_tenant(ladder.tenant).get(action="tier.published", object_id=str(draft.pk))
    assert published.before == {"state": "awaiting_approval", "published_at": None}
    assert published.after["state"] == "published"
    assert published.actor == pm


def test_the_author_cannot_approve_their_own_draft(ladder, draft):
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    with pytest.raises(PermissionDenied) as exc:
        services.approve(ladder.tenant, obj=draft, actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.FOUR_EYES
    assert "someone else must approve" in exc.value.message


def test_a_product_manager_who_edited_the_draft_cannot_approve_it_either(ladder, draft, world_a):
    pm2 = second_pm(world_a)
    services.set_price(ladder.tenant, owner=draft, interval="month", amount=14_900, actor=pm2)
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    with pytest.raises(PermissionDenied):
        services.approve(ladder.tenant, obj=draft, actor=pm2)


def test_a_second_product_manager_may_approve(ladder, draft, world_a):
    pm2 = second_pm(world_a)
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    services.approve(ladder.tenant, obj=draft, actor=pm2)
    draft.refresh_from_db()
    assert draft.approved_by == pm2


def test_owners_may_approve_their_own_drafts(ladder, world_a):
    owner = world_a.staff["owner"]
    tier = make_tier(
        ladder.tenant,
        owner,
        product=ladder.product,
        key="solo",
        rank=50,
        monthly=100,
        annual=1_000,
        grants={ladder.api_calls: None, ladder.seats: None, ladder.sso: True},
    )
    services.submit_for_approval(ladder.tenant, obj=tier, actor=owner)
    services.approve(ladder.tenant, obj=tier, actor=owner)
    assert Tier.objects.get(pk=tier.pk).is_approved


@pytest.mark.parametrize("role", ["csm", "analyst"])
def test_roles_without_the_approve_capability_cannot_approve(ladder, draft, world_a, role):
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    with pytest.raises(PermissionDenied) as exc:
        services.approve(ladder.tenant, obj=draft, actor=world_a.staff[role])
    assert exc.value.code == CatalogErrorCode.NO_CAPABILITY


def test_staff_of_another_tenant_cannot_approve(ladder, draft, world_b):
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    with pytest.raises(PermissionDenied):
        services.approve(ladder.tenant, obj=draft, actor=world_b.staff["owner"])


def test_only_approved_items_publish_and_only_drafts_submit(ladder, draft):
    with pytest.raises(Conflict) as exc:
        services.publish(ladder.tenant, obj=draft, actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.WRONG_STATE
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    with pytest.raises(Conflict) as exc:
        services.publish(ladder.tenant, obj=draft, actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.NOT_APPROVED
    with pytest.raises(Conflict):
        services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)


def test_return_to_draft_clears_the_submission_and_approval(ladder, draft):
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    services.approve(ladder.tenant, obj=draft, actor=ladder.approver)
    services.return_to_draft(ladder.tenant, obj=draft, actor=ladder.approver, reason="Price too low")
    draft.refresh_from_db()
    assert draft.state == GovernanceState.DRAFT and draft.approved_at is None and draft.submitted_by is None
    entry = AuditEntry.objects.for_tenant(ladder.tenant).get(action="tier.returned_to_draft")
    assert entry.after["reason"] == "Price too low"


def test_nothing_past_draft_can_be_edited_in_place(ladder, draft):
    services.submit_for_approval(ladder.tenant, obj=draft, actor=ladder.pm)
    for attempt in (
        lambda: services.update_draft(ladder.tenant, obj=draft, actor=ladder.pm, name="Renamed"),
        lambda: services.set_price(ladder.tenant, owner=draft, interval="month", amount=1, actor=ladder.pm),
        lambda: services.set_entitlement(
            ladder.tenant, owner=draft, feature=ladder.sso, actor=ladder.pm, enabled=False
        ),
    ):
        with pytest.raises(Conflict) as exc:
            attempt()
        assert exc.value.code == CatalogErrorCode.NOT_DRAFT
    assert Tier.objects.get(pk=draft.pk).name == "Scale"


def test_published_prices_are_immutable_even_below_the_services(ladder):
    price = ladder.team.prices.get(interval="month")
    with pytest.raises(Conflict):
        services.set_price(ladder.tenant, owner=ladder.team, interval="month", amount=3_900, actor=ladder.pm)
    price.amount = 3_900
    with pytest.raises(ValueError, match="frozen"):
        price.save()
    assert Price.objects.get(pk=price.pk).amount == 2_900
    entitlement = Entitlement.objects.get(tier=ladder.team, feature=ladder.api_calls)
    entitlement.limit = 1
    with pytest.raises(ValueError, match="revise"):
        entitlement.save()


def test_revise_copies_a_published_tier_into_the_next_draft_version(ladder):
    result = services.revise(ladder.tenant, obj=ladder.team, actor=ladder.pm)
    v2 = result.obj
    assert (v2.key, v2.version, v2.state) == ("team", 2, GovernanceState.DRAFT)
    assert {(p.interval, p.amount, p.version, p.state) for p in v2.prices.all()} == {
        ("month", 2_900, 2, "draft"),
        ("year", 29_000, 2, "draft"),
    }
    assert {(e.feature_id, e.limit) for e in v2.entitlements.all()} == {
        (e.feature_id, e.limit) for e in ladder.team.entitlements.all()
    }
    with pytest.raises(Conflict) as exc:
        services.revise(ladder.tenant, obj=ladder.team, actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.OPEN_DRAFT_EXISTS


def test_publishing_version_two_retires_version_one_and_its_prices_but_keeps_the_rows(ladder):
    v2 = services.revise(ladder.tenant, obj=ladder.team, actor=ladder.pm).obj
    services.set_price(ladder.tenant, owner=v2, interval="month", amount=3_400, actor=ladder.pm)
    services.set_price(ladder.tenant, owner=v2, interval="year", amount=34_000, actor=ladder.pm)
    result = services.submit_for_approval(ladder.tenant, obj=v2, actor=ladder.pm)
    services.approve(ladder.tenant, obj=v2, actor=ladder.approver)
    result = services.publish(ladder.tenant, obj=v2, actor=ladder.pm)
    old = Tier.objects.get(pk=ladder.team.pk)
    assert old.state == GovernanceState.RETIRED and old.retired_at is not None
    assert [r.pk for r in result.retired] == [old.pk]
    assert set(old.prices.values_list("state", "amount")) == {("retired", 2_900), ("retired", 29_000)}
    assert Tier.objects.get(pk=v2.pk).state == GovernanceState.PUBLISHED


def test_retiring_a_tier_with_licences_is_allowed_and_warns_with_the_count(ladder):
    def counter(tenant, tier_ids):
        return 7 if tenant == ladder.tenant and ladder.team.pk in tier_ids else 0

    hooks.register_holder_counter(counter)
    try:
        result = services.retire(ladder.tenant, obj=ladder.team, actor=ladder.pm, reason="Sunset")
    finally:
        hooks.unregister_holder_counter(counter)
    assert result.obj.state == GovernanceState.RETIRED
    assert any("7 active licence(s) still hold Team v1" in w for w in result.warnings)


def test_retiring_without_a_registered_counter_reports_no_holders(ladder):
    result = services.retire(ladder.tenant, obj=ladder.free, actor=ladder.pm)
    assert not [w for w in result.warnings if "licence" in w]


def test_draft_edits_are_audited_with_before_and_after(ladder, draft):
    services.update_draft(ladder.tenant, obj=draft, actor=ladder.pm, tagline="For growing teams")
    entry = AuditEntry.objects.for_tenant(ladder.tenant).filter(action="tier.updated").latest("id")
    assert entry.before == {"tagline": ""}
    assert entry.after == {"tagline": "For growing teams"}
    services.set_price(ladder.tenant, owner=draft, interval="month", amount=16_900, actor=ladder.pm)
    price_entry = AuditEntry.objects.for_tenant(ladder.tenant).filter(action="price.updated").latest("id")
    assert price_entry.before["amount"] == 15_900 and price_entry.after["amount"] == 16_900


def test_a_published_bundle_needs_published_parts_and_a_scenario(ladder):
    from catalog.models import Bundle

    bundle = services.create_draft(
        ladder.tenant,
        model=Bundle,
        actor=ladder.pm,
        key="health",
        name="Clinics",
        tier=ladder.team,
        addons=[ladder.addon],
        audience_kind="industry",
        audience="healthcare",
        scenarios=[],
    )
    with pytest.raises(InvalidInput, match="scenario"):
        services.submit_for_approval(ladder.tenant, obj=bundle, actor=ladder.pm)
    services.update_draft(
        ladder.tenant,
        obj=bundle,
        actor=ladder.pm,
        scenarios=[{"title": "A 12-person clinic", "story": "Audit-ready in a week."}],
    )
    assert publish_through_governance(ladder.tenant, bundle, author=ladder.pm, approver=ladder.approver).state == (
        GovernanceState.PUBLISHED
    )


def test_retiring_counts_real_licences_through_the_counter_billing_registers(ladder, world_a):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import License

    end = timezone.now() + timedelta(days=30)
    License.objects.create(
        tenant=world_a.tenant,
        account=world_a.account,
        tier=ladder.team,
        price=ladder.team.prices.get(interval="month"),
        seats=4,
        current_period_end=end,
    )
    result = services.retire(ladder.tenant, obj=ladder.team, actor=ladder.pm)
    assert any(w.startswith("1 active licence(s) still hold Team v1") for w in result.warnings)
    licence = License.objects.get(account=world_a.account)
    assert licence.tier_id == ladder.team.pk and licence.price.state == GovernanceState.RETIRED  # still honoured
