"""An arm's `trial_days` and `channel` are applied: trials started from its offers, and how its offers are sent."""

from __future__ import annotations

import pytest

from accounts.models import Contact
from messaging.models import Message
from tests.messaging.conftest import live_template
from tests.upgrades.experiments.test_engine import _signals, ew, running  # noqa: F401 (ew is a fixture)
from upgrades.experiments.buckets import CONTROL, arm_for_bucket, bucket_of
from upgrades.experiments.models import ExperimentAssignment
from upgrades.offers.services.building import build_offers_for_signals
from upgrades.offers.services.messages import due_offer_messages, send_due_for_tenant
from upgrades.offers.services.trials import start_trial

pytestmark = pytest.mark.django_db


def _treated_offers(ew, variant: dict, n: int = 6):  # noqa: F811
    """Offers for `n` accounts the experiment treats, and one it holds out: the bucket is a hash of the ids,
    so accounts are made until there are enough of each (a fixed number could all fall in the control)."""
    experiment = running(ew.tenant, variants=[{"key": "b", "weight": 1, **variant}], control_percent=20)
    treated, held_out, made = [], [], 0
    while len(treated) < n or not held_out:
        (signal,) = _signals(ew, 1, prefix=f"t{made}-")
        made += 1
        arm = arm_for_bucket(experiment, bucket_of(ew.tenant.pk, experiment.pk, signal.account_id))
        if arm == CONTROL:
            held_out.append(signal)
        elif len(treated) < n:
            treated.append(signal)
    offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in treated + held_out])
    assert len(offers) == n and all(o.variant == "b" for o in offers)
    assert {o.signal_id for o in offers} == {s.pk for s in treated}  # the held-out account got none
    return offers


def _trial(ew, offer):  # noqa: F811
    return start_trial(ew.tenant, account=offer.account, target_kind=offer.target_kind, target_key=offer.target_key,
                       actor="test", source="offer", offer=offer, now=offer.sent_at)  # fmt: skip


def test_a_trial_started_from_an_arms_offer_lasts_the_arms_days(ew):  # noqa: F811
    offers = _treated_offers(ew, {"trial_days": 21})
    trial = _trial(ew, offers[0])
    assert (trial.ends_at - trial.starts_at).days == 21
    # without the offer the usual length applies (the live settings' trial days)
    plain = start_trial(ew.tenant, account=offers[1].account, target_kind=offers[1].target_kind,
                        target_key=offers[1].target_key, actor="test", now=offers[1].sent_at)  # fmt: skip
    assert (plain.ends_at - plain.starts_at).days != 21
    # explicit days still win over the arm
    explicit = start_trial(ew.tenant, account=offers[2].account, target_kind=offers[2].target_kind,
                           target_key=offers[2].target_key, actor="test", offer=offers[2], days=5,
                           now=offers[2].sent_at)  # fmt: skip
    assert (explicit.ends_at - explicit.starts_at).days == 5


def test_an_arms_trial_days_are_bounded_to_90(ew):  # noqa: F811
    offers = _treated_offers(ew, {"trial_days": 400}, n=3)
    trial = _trial(ew, offers[0])
    assert (trial.ends_at - trial.starts_at).days == 90


def test_an_in_app_arm_sends_its_offer_in_app_only(ew):  # noqa: F811
    live_template(ew.tenant, key="offer-sent", purpose="offer_sent", channel="email")
    live_template(
        ew.tenant,
        key="offer-sent",
        purpose="offer_sent",
        channel="in_app",
        variant="p",
        title="{{ offer.tier }} may fit",
    )
    offers = _treated_offers(ew, {"channel": "in_app"})
    for offer in offers:
        Contact.objects.create(tenant=ew.tenant, account=offer.account, email=f"c{offer.pk}@example.com")
    sent_at = max(o.sent_at for o in offers)
    assert {d.channel for d in due_offer_messages(ew.tenant, now=sent_at)} == {"in_app"}
    send_due_for_tenant(ew.tenant, now=sent_at)
    messages = Message.objects.for_tenant(ew.tenant).filter(account_id__in=[o.account_id for o in offers])
    assert messages.count() == len(offers)
    assert set(messages.values_list("channel", flat=True)) == {"in_app"}  # never emailed as well
    controls = ExperimentAssignment.objects.for_tenant(ew.tenant).filter(arm=CONTROL).values_list("account_id")
    assert not Message.objects.for_tenant(ew.tenant).filter(account_id__in=controls).exists()


def test_an_email_arm_and_offers_outside_experiments_are_emailed(ew):  # noqa: F811
    live_template(ew.tenant, key="offer-sent", purpose="offer_sent", channel="email")
    live_template(
        ew.tenant,
        key="offer-sent",
        purpose="offer_sent",
        channel="in_app",
        variant="p",
        title="{{ offer.tier }} may fit",
    )
    offers = _treated_offers(ew, {"channel": "email"})
    for offer in offers:
        Contact.objects.create(tenant=ew.tenant, account=offer.account, email=f"c{offer.pk}@example.com")
    sent_at = max(o.sent_at for o in offers)
    send_due_for_tenant(ew.tenant, now=sent_at)
    messages = Message.objects.for_tenant(ew.tenant).filter(account_id__in=[o.account_id for o in offers])
    assert messages.count() == len(offers)
    assert set(messages.values_list("channel", flat=True)) == {"email"}
