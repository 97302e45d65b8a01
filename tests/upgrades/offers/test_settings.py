"""Offer settings governance: drafts copy the live version, four eyes, one live version, validation, audit."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.models import AuditEntry, Membership, Role, User
from catalog.models import DiscountPolicy, GovernanceState
from tests.usage.factories import make_catalog
from upgrades.offers.errors import Conflict, InvalidInput, NotFound, OffersErrorCode, PermissionDenied
from upgrades.offers.models import OfferSettings, SettingsState
from upgrades.offers.services import settings as svc

DRIVERS = [
    {"kind": "hours_saved", "meter": "api_calls", "hours_per_unit": "0.002", "hourly_cost": 6000, "label": "Ops time"},
    {"kind": "revenue_at_risk", "amount": 1_200_000, "probability_percent": "5"},
    {"kind": "incidents_avoided", "per_month": "0.5", "cost_per_incident": 250_000},
]
VARIANTS = [{"key": "none", "percent": "0"}, {"key": "launch10", "percent": "10", "explanation": "Launch month."}]


@pytest.fixture
def cat(world_a):
    return make_catalog(world_a.tenant)


def second_pm(world) -> User:
    user = User.objects.create_user(f"pm2@{world.tenant.slug}.test", "pw-for-tests-123")
    Membership.objects.create(tenant=world.tenant, user=user, role=Role.PRODUCT_MANAGER)
    return user


def live_via_governance(world, **fields) -> OfferSettings:
    pm, owner = world.staff[Role.PRODUCT_MANAGER], world.staff[Role.OWNER]
    draft = svc.create_settings_draft(world.tenant, actor=pm, **fields)
    draft = svc.submit_settings(world.tenant, settings=draft, actor=pm)
    return svc.approve_settings(world.tenant, settings=draft, actor=owner, comment="Looks right.")


def test_a_draft_is_validated_submitted_and_approved_by_a_second_pm_with_a_comment(world_a, cat):
    pm, pm2 = world_a.staff[Role.PRODUCT_MANAGER], second_pm(world_a)
    draft = svc.create_settings_draft(
        world_a.tenant, actor=pm, signal_kinds=["upgrade_opportunity"], value_model=DRIVERS, discount_variants=VARIANTS
    )
    assert (draft.version, draft.state, draft.contributor_ids) == (1, SettingsState.DRAFT, [pm.pk])
    assert draft.value_model[0] == {**DRIVERS[0], "hours_per_unit": "0.002"}
    assert draft.value_model[1]["label"] == "Revenue at risk"  # a label is filled in when none is given
    svc.submit_settings(world_a.tenant, settings=draft, actor=pm)
    with pytest.raises(PermissionDenied) as refused:
        svc.approve_settings(world_a.tenant, settings=draft, actor=pm)
    assert refused.value.code == OffersErrorCode.FOUR_EYES
    live = svc.approve_settings(world_a.tenant, settings=draft, actor=pm2, comment="Checked the drivers.")
    assert (live.state, live.approved_by, live.approval_comment) == (SettingsState.LIVE, pm2, "Checked the drivers.")
    assert live.live_at is not None
    actions = list(AuditEntry.objects.filter(tenant=world_a.tenant, action__startswith="offersettings.")
                   .order_by("id").values_list("action", flat=True))  # fmt: skip
    assert actions == ["offersettings.created", "offersettings.submitted", "offersettings.approved"]


def test_a_new_draft_copies_the_live_version_and_approval_retires_it_in_the_same_step(world_a, cat):
    v1 = live_via_governance(world_a, value_model=DRIVERS, discount_variants=VARIANTS, expiry_days=30)
    pm = world_a.staff[Role.PRODUCT_MANAGER]
    v2 = svc.create_settings_draft(world_a.tenant, actor=pm)
    assert (v2.version, v2.value_model, v2.discount_variants, v2.expiry_days) == (2, v1.value_model,
                                                                                  v1.discount_variants, 30)  # fmt: skip
    assert v2.discount_variants[0] == {"key": "none", "percent": "0", "explanation": ""}
    with pytest.raises(Conflict):  # one open draft at a time
        svc.create_settings_draft(world_a.tenant, actor=pm)
    v2 = svc.update_settings(world_a.tenant, settings=v2, actor=pm, expiry_days=14)
    v2 = svc.submit_settings(world_a.tenant, settings=v2, actor=pm)
    svc.approve_settings(world_a.tenant, settings=v2, actor=world_a.staff[Role.OWNER])
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.state, v2.state, v2.expiry_days) == (SettingsState.RETIRED, SettingsState.LIVE, 14)
    assert v1.retired_at == v2.live_at
    assert OfferSettings.objects.filter(tenant=world_a.tenant, state=SettingsState.LIVE).count() == 1
    entry = AuditEntry.objects.filter(action="offersettings.retired").get()
    assert entry.after["reason"] == "replaced by v2"


def test_the_database_refuses_a_second_live_version(world_a, cat):
    live_via_governance(world_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        OfferSettings.objects.create(tenant=world_a.tenant, version=9, state=SettingsState.LIVE)


def test_only_drafts_are_edited_and_editing_makes_you_a_contributor(world_a, cat):
    pm, pm2 = world_a.staff[Role.PRODUCT_MANAGER], second_pm(world_a)
    draft = svc.create_settings_draft(world_a.tenant, actor=pm)
    svc.update_settings(world_a.tenant, settings=draft, actor=pm2, trial_days=21)
    draft = svc.submit_settings(world_a.tenant, settings=draft, actor=pm)
    with pytest.raises(PermissionDenied):  # pm2 edited it: a contributor may not approve either
        svc.approve_settings(world_a.tenant, settings=draft, actor=pm2)
    with pytest.raises(Conflict) as not_draft:
        svc.update_settings(world_a.tenant, settings=draft, actor=pm, trial_days=7)
    assert not_draft.value.code == OffersErrorCode.NOT_DRAFT
    draft = svc.return_settings_to_draft(world_a.tenant, settings=draft, actor=pm, reason="one more change")
    assert draft.state == SettingsState.DRAFT and draft.submitted_by is None


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"value_model": [{"kind": "hours_saved", "meter": "nope", "hours_per_unit": "1", "hourly_cost": 1}]},
         "value_model[0].meter"),
        ({"value_model": [{"kind": "magic"}]}, "value_model[0].kind"),
        ({"value_model": [{"kind": "revenue_at_risk", "amount": 100, "probability_percent": "101"}]},
         "value_model[0].probability_percent"),
        ({"value_model": [{"kind": "revenue_at_risk", "amount": -1, "probability_percent": "5"}]},
         "value_model[0].amount"),
        ({"value_model": [{"kind": "incidents_avoided", "per_month": 0.5, "cost_per_incident": 100}]},
         "value_model[0].per_month"),
        ({"value_model": [{"kind": "incidents_avoided", "per_month": "1", "cost_per_incident": 1, "x": 1}]},
         "value_model[0].x"),
        ({"value_model": "hours"}, "value_model"),
        ({"discount_variants": [{"key": "big", "percent": "150"}]}, "discount_variants[0].percent"),
        ({"discount_variants": [{"key": "a", "percent": "-1"}]}, "discount_variants[0].percent"),
        ({"discount_variants": [{"key": "a", "percent": "5"}, {"key": "a", "percent": "6"}]},
         "discount_variants[1].key"),
        ({"discount_variants": [{"key": "has space", "percent": "5"}]}, "discount_variants[0].key"),
        ({"signal_kinds": ["churn_risk", "made_up"]}, "signal_kinds"),
        ({"expiry_days": 0}, "expiry_days"),
        ({"similar_min_accounts": 2}, "similar_min_accounts"),
    ],
)  # fmt: skip
def test_invalid_settings_say_which_field_and_why_and_write_nothing(world_a, cat, fields, where):
    with pytest.raises(InvalidInput) as refused:
        svc.create_settings_draft(world_a.tenant, actor=world_a.staff[Role.PRODUCT_MANAGER], **fields)
    assert where in refused.value.details, refused.value.details
    assert not OfferSettings.objects.filter(tenant=world_a.tenant).exists()
    assert not AuditEntry.objects.filter(action__startswith="offersettings.").exists()


def test_meter_keys_are_the_tenants_own(world_a, world_b, cat):
    make_catalog(world_b.tenant)
    # B has a meter "storage" too; A's catalog decides for A. A meter only B has is refused for A.
    from catalog.models import Meter

    Meter.objects.create(tenant=world_b.tenant, key="b_only", name="B only", event_name="b.only")
    with pytest.raises(InvalidInput):
        svc.create_settings_draft(world_a.tenant, actor=world_a.staff[Role.PRODUCT_MANAGER], value_model=[
            {"kind": "hours_saved", "meter": "b_only", "hours_per_unit": "1", "hourly_cost": 100}])  # fmt: skip


def test_a_variant_over_the_policy_cap_is_allowed_and_flagged(world_a, cat):
    DiscountPolicy.objects.create(tenant=world_a.tenant, key="std", name="Standard", cap_percent=20,
                                  state=GovernanceState.PUBLISHED)  # fmt: skip
    variants = [{"key": "launch10", "percent": "10"}, {"key": "rescue30", "percent": "30", "explanation": "Win-back."}]
    draft = svc.create_settings_draft(
        world_a.tenant, actor=world_a.staff[Role.PRODUCT_MANAGER], discount_variants=variants
    )
    views = {v.key: v for v in svc.describe_variants(world_a.tenant, draft)}
    assert (views["launch10"].over_cap, views["launch10"].flag) == (False, "")
    assert (views["rescue30"].over_cap, views["rescue30"].flag) == (True, "needs approval per offer")


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CSM])
def test_roles_without_catalog_rights_cannot_draft_or_approve(world_a, cat, role):
    with pytest.raises(PermissionDenied):
        svc.create_settings_draft(world_a.tenant, actor=world_a.staff[role])
    pm = world_a.staff[Role.PRODUCT_MANAGER]
    draft = svc.submit_settings(world_a.tenant, settings=svc.create_settings_draft(world_a.tenant, actor=pm), actor=pm)
    with pytest.raises(PermissionDenied) as refused:
        svc.approve_settings(world_a.tenant, settings=draft, actor=world_a.staff[role])
    assert refused.value.code == OffersErrorCode.NO_CAPABILITY
    assert "permission" in (svc.approval_refusal(world_a.tenant, draft, world_a.staff[role]) or "")


def test_another_tenants_settings_cannot_be_touched(world_a, world_b, cat):
    make_catalog(world_b.tenant)
    theirs = svc.create_settings_draft(world_b.tenant, actor=world_b.staff[Role.PRODUCT_MANAGER])
    with pytest.raises(NotFound):
        svc.update_settings(world_a.tenant, settings=theirs, actor=world_a.staff[Role.PRODUCT_MANAGER], trial_days=3)
    with pytest.raises(PermissionDenied):  # A's PM is no member of B
        svc.submit_settings(world_b.tenant, settings=theirs, actor=world_a.staff[Role.PRODUCT_MANAGER])
    theirs.refresh_from_db()
    assert (theirs.state, theirs.trial_days) == (SettingsState.DRAFT, 14)


def test_retire_stops_offers_until_another_version_is_live(world_a, cat):
    from upgrades.offers.selectors import get_live_settings

    live = live_via_governance(world_a)
    assert get_live_settings(world_a.tenant) == live
    svc.retire_settings(world_a.tenant, settings=live, actor=world_a.staff[Role.PRODUCT_MANAGER], reason="pause")
    assert get_live_settings(world_a.tenant) is None
    with pytest.raises(Conflict):
        svc.retire_settings(world_a.tenant, settings=live, actor=world_a.staff[Role.PRODUCT_MANAGER])
