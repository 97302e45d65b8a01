"""The offer settings pages: a draft from form fields (no JSON), the value model in words, four eyes on
approval with a comment, one live version, roles, and another tenant's ids answering 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, Role
from catalog.models import DiscountPolicy, GovernanceState
from tests.usage.factories import make_catalog
from upgrades.offers.models import OfferSettings, SettingsState
from upgrades.offers.services import settings as svc

FORM = {
    "name": "Offer settings",
    "signal_kinds": ["upgrade_opportunity", "trial_candidate"],
    "expiry_days": "21",
    "trial_days": "14",
    "trial_window_days": "180",
    "similar_min_accounts": "5",
    "driver-0-kind": "hours_saved",
    "driver-0-meter": "api_calls",
    "driver-0-hours_per_unit": "0.002",
    "driver-0-hourly_cost": "60.00",
    "driver-0-label": "Ops time saved",
    "driver-1-kind": "revenue_at_risk",
    "driver-1-amount": "12,000",
    "driver-1-probability_percent": "5",
    "driver-2-kind": "",
    "variant-0-key": "none",
    "variant-0-percent": "0",
    "variant-1-key": "rescue30",
    "variant-1-percent": "30",
    "variant-1-explanation": "Win-back offer.",
}


@pytest.fixture
def cat(world_a):
    catalog = make_catalog(world_a.tenant)
    DiscountPolicy.objects.create(tenant=world_a.tenant, key="std", name="Standard", cap_percent=20,
                                  state=GovernanceState.PUBLISHED)  # fmt: skip
    return catalog


def test_a_pm_drafts_settings_from_fields_and_sees_them_in_words(world_a, cat):
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    answer = pm.post(reverse("admin:upgrades_offersettings_add"), FORM)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    obj = OfferSettings.objects.get(tenant=world_a.tenant)
    assert obj.value_model == [
        {"kind": "hours_saved", "meter": "api_calls", "hours_per_unit": "0.002", "hourly_cost": 6000,
         "label": "Ops time saved"},
        {"kind": "revenue_at_risk", "amount": 1_200_000, "probability_percent": "5", "label": "Revenue at risk"},
    ]  # fmt: skip
    assert obj.signal_kinds == ["upgrade_opportunity", "trial_candidate"]
    page = pm.get(reverse("admin:upgrades_offersettings_change", args=[obj.pk])).content.decode()
    assert "Ops time saved: 0.002 h per unit of api_calls, at $60.00 an hour" in page
    assert "Revenue at risk: 5 % chance of losing $12,000.00" in page
    assert "over the policy cap of 20 %: needs approval per offer" in page
    assert 'value="60.00"' in page  # amounts come back as the person typed them, not in cents


def test_an_invalid_form_says_which_field_and_saves_nothing(world_a, cat):
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    bad = {**FORM, "driver-0-meter": "", "driver-1-probability_percent": "150", "variant-1-percent": "abc",
           "driver-0-hourly_cost": "sixty"}  # fmt: skip
    answer = pm.post(reverse("admin:upgrades_offersettings_add"), bad)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "value_model[0].hourly_cost" in text
    assert not OfferSettings.objects.exists()
    bad = {**FORM, "driver-1-probability_percent": "150", "variant-1-percent": "abc"}
    text = pm.post(reverse("admin:upgrades_offersettings_add"), bad).content.decode()
    assert "value_model[1].probability_percent: A percentage from 0 to 100." in text
    assert "discount_variants[1].percent" in text
    assert not OfferSettings.objects.exists()


def test_the_author_cannot_approve_a_second_pm_approves_with_a_comment_and_the_old_version_retires(world_a, cat):
    from tests.upgrades.offers.test_settings import second_pm

    owner = world_a.staff[Role.OWNER]
    v1 = svc.submit_settings(world_a.tenant, settings=svc.create_settings_draft(world_a.tenant, actor=owner),
                             actor=owner)  # fmt: skip
    pm2 = second_pm(world_a)
    svc.approve_settings(world_a.tenant, settings=v1, actor=pm2)
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    pm.post(reverse("admin:upgrades_offersettings_add"), FORM)
    v2 = OfferSettings.objects.get(tenant=world_a.tenant, version=2)
    transition = reverse("admin:upgrades_offersettings_transition", args=[v2.pk])
    pm.post(transition, {"transition": "submit"})
    page = pm.get(reverse("admin:upgrades_offersettings_change", args=[v2.pk])).content.decode()
    assert "so someone else must approve it" in page
    pm.post(transition, {"transition": "approve", "comment": "mine"})
    assert OfferSettings.objects.get(pk=v2.pk).state == SettingsState.AWAITING_APPROVAL
    second = world_a.staff_client(Role.PRODUCT_MANAGER)
    second.force_login(pm2)
    second.post(transition, {"transition": "approve", "comment": "Drivers checked against last quarter."})
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.state, v2.state) == (SettingsState.RETIRED, SettingsState.LIVE)
    assert v2.approval_comment == "Drivers checked against last quarter."
    page = pm.get(reverse("admin:upgrades_offersettings_change", args=[v2.pk])).content.decode()
    assert "Drivers checked against last quarter." in page and "Only a draft can be edited" in page


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CSM])
def test_roles_without_catalog_rights_see_but_cannot_draft_or_approve(world_a, cat, role):
    owner = world_a.staff[Role.OWNER]
    draft = svc.submit_settings(world_a.tenant, settings=svc.create_settings_draft(world_a.tenant, actor=owner),
                                actor=owner)  # fmt: skip
    client = world_a.staff_client(role)
    assert client.get(reverse("admin:upgrades_offersettings_change", args=[draft.pk])).status_code == 200
    assert client.post(reverse("admin:upgrades_offersettings_add"), FORM).status_code == 403
    answer = client.post(reverse("admin:upgrades_offersettings_transition", args=[draft.pk]), {"transition": "approve"})
    assert answer.status_code == 403
    assert OfferSettings.objects.get(pk=draft.pk).state == SettingsState.AWAITING_APPROVAL
    assert not AuditEntry.objects.filter(action="offersettings.approved").exists()


def test_another_tenants_settings_are_404_on_every_page(world_a, world_b, cat):
    make_catalog(world_b.tenant)
    theirs = svc.create_settings_draft(world_b.tenant, actor=world_b.staff[Role.OWNER])
    client = world_a.staff_client(Role.OWNER)
    assert client.get(reverse("admin:upgrades_offersettings_change", args=[theirs.pk])).status_code == 404
    answer = client.post(reverse("admin:upgrades_offersettings_transition", args=[theirs.pk]), {"transition": "submit"})
    assert answer.status_code == 404
    answer = client.post(reverse("admin:upgrades_offersettings_change", args=[theirs.pk]), FORM)
    assert answer.status_code == 404
    theirs.refresh_from_db()
    assert (theirs.state, theirs.value_model) == (SettingsState.DRAFT, [])
    listing = client.get(reverse("admin:upgrades_offersettings_changelist")).content.decode()
    assert f"/{theirs.pk}/change/" not in listing
