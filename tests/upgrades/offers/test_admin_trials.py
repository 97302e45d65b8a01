"""Trial pages: "Start a trial" through start_trial, the trial's page with its early wins, refusals shown
as messages, roles, the read-only feedback list, and another tenant's ids answering 404."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from tests.upgrades.offers.admin_factories import make_offer
from tests.upgrades.offers.conftest import make_live_settings
from tests.usage.factories import give_license, make_catalog
from upgrades.offers.models import Feedback, FeedbackKind, OfferState, Trial, TrialState, TrialWin


@pytest.fixture
def cat(world_a, live_settings):
    catalog = make_catalog(world_a.tenant)
    give_license(world_a.account, catalog.team)
    return catalog


def start(client, account, key="business", **extra):
    return client.post(reverse("admin:upgrades_trial_start"),
                       {"account": account.pk, "target_kind": "tier", "target_key": key, **extra})  # fmt: skip


def test_a_csm_starts_a_trial_and_sees_its_early_wins(world_a, cat):
    csm = world_a.staff_client(Role.CSM)
    answer = start(csm, world_a.account, days="10")
    assert answer.status_code == 302, answer.content.decode()[:2000]
    trial = Trial.objects.get(tenant=world_a.tenant)
    assert (trial.state, trial.source, trial.unlocked_features) == (TrialState.ACTIVE, "csm", ["sso"])
    assert (trial.ends_at - trial.starts_at).days == 10
    now = timezone.now()
    TrialWin.objects.create(tenant=world_a.tenant, trial=trial, feature=cat.sso, first_used_at=now, last_used_at=now,
                            uses=3)  # fmt: skip
    page = csm.get(reverse("admin:upgrades_trial_change", args=[trial.pk])).content.decode()
    assert "Single sign-on" in page and 'data-testid="win"' in page and "left of 10" in page
    assert timezone.localtime(trial.ends_at).strftime("%-d %b %Y") in page
    # a second trial of the same target is refused by the service, shown as a message
    page = start(csm, world_a.account, days="10").content.decode()
    assert Trial.objects.filter(tenant=world_a.tenant).count() == 1
    assert "errornote" in page or "error" in page


def test_the_start_form_comes_filled_in_from_an_offer(world_a, cat):
    url = reverse("admin:upgrades_trial_start")
    page = world_a.staff_client(Role.CSM).get(url, {"account": world_a.account.pk, "target_kind": "addon",
                                                     "target_key": "sso"}).content.decode()  # fmt: skip
    assert f'<option value="{world_a.account.pk}" selected>' in page
    assert '<option value="addon" selected>' in page and 'value="sso"' in page


def test_an_analyst_cannot_start_a_trial(world_a, cat):
    analyst = world_a.staff_client(Role.ANALYST)
    assert analyst.get(reverse("admin:upgrades_trial_start")).status_code == 403
    assert start(analyst, world_a.account).status_code == 403
    assert not Trial.objects.exists()
    assert "Start a trial" not in analyst.get(reverse("admin:upgrades_trial_changelist")).content.decode()


def test_another_tenants_trial_feedback_and_accounts_are_walled(world_a, world_b, cat):
    catalog_b = make_catalog(world_b.tenant)
    give_license(world_b.account, catalog_b.team)
    settings_b = make_live_settings(world_b.tenant)
    owner_b = world_b.staff_client(Role.OWNER)
    assert start(owner_b, world_b.account).status_code == 302
    theirs = Trial.objects.get(tenant=world_b.tenant)
    offer_b = make_offer(world_b.account, settings_b, state=OfferState.SENT)
    feedback = Feedback.objects.create(
        tenant=world_b.tenant, account=world_b.account, offer=offer_b, kind=FeedbackKind.DECLINE,
        reason_code="too_expensive", text="B's secret",
    )  # fmt: skip
    owner_a = world_a.staff_client(Role.OWNER)
    assert owner_a.get(reverse("admin:upgrades_trial_change", args=[theirs.pk])).status_code == 404
    assert owner_a.get(reverse("admin:upgrades_feedback_change", args=[feedback.pk])).status_code == 404
    assert "B&#x27;s secret" not in owner_a.get(reverse("admin:upgrades_feedback_changelist")).content.decode()
    page = start(owner_a, world_b.account).content.decode()
    assert "Choose one of your accounts." in page
    assert Trial.objects.filter(account=world_b.account).count() == 1


def test_feedback_is_read_only(world_a, live_settings):
    offer = make_offer(world_a.account, live_settings, state=OfferState.SENT)
    fb = Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, offer=offer,
                                 kind=FeedbackKind.DECLINE, reason_code="not_now", text="Next quarter.")  # fmt: skip
    owner = world_a.staff_client(Role.OWNER)
    listing = owner.get(reverse("admin:upgrades_feedback_changelist")).content.decode()
    assert "Next quarter." in listing and "Not now" in listing
    page = owner.get(reverse("admin:upgrades_feedback_change", args=[fb.pk])).content.decode()
    assert 'name="_save"' not in page
    assert owner.post(reverse("admin:upgrades_feedback_change", args=[fb.pk]), {"text": "x"}).status_code == 403
