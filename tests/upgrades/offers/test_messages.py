"""Lifecycle messages: each moment is due once (offer sent + one reminder, trial day 1 / midpoint / ending /
ended, renewal 90/60/30 with the proposal, the decline follow-up after the quiet period), with time travel."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import Contact, Role
from accounts.tenancy import tenant_context
from billing.models import License
from messaging.demo import seed_messaging_demo
from messaging.models import DeclineQuiet, Message, MessageState, MessageTemplate, MessagingSettings
from tests.upgrades.offers.test_trials import make_trial_world
from tests.usage.factories import event
from upgrades.offers.models import Offer, OfferSettings, TrialState
from upgrades.offers.services import messages
from upgrades.offers.services.trials import convert_trial_on_settle, end_due_trials, start_trial
from upgrades.portal import tokens
from usage.services import ingest_events

DAY = datetime.timedelta(days=1)
ADMITTED = (MessageState.QUEUED, MessageState.HELD, MessageState.SENT)


def make_message_world(world, **trial_kwargs):
    tw = make_trial_world(world, **trial_kwargs)
    with tenant_context(tw.tenant):
        seed_messaging_demo(tw.tenant)
        # Generous caps and no quiet hours, so each test sees its own cadence (the cap is messaging's).
        MessagingSettings.objects.for_tenant(tw.tenant).update(
            cap_count=50,
            account_cap_count=50,
            quiet_hours_start=datetime.time(0, 0),
            quiet_hours_end=datetime.time(0, 0),
        )
        Contact.objects.for_tenant(tw.tenant).update(marketing_consent=True)
    return tw


@pytest.fixture
def mw(world_a):
    return make_message_world(world_a)


def _sweep(tw, now):
    with tenant_context(tw.tenant):
        return messages.send_due_for_tenant(tw.tenant, now=now)


def _sent(tw, prefix=""):
    with tenant_context(tw.tenant):
        return sorted(
            (m.template_key, m.cause, m.state)
            for m in Message.objects.for_tenant(tw.tenant).filter(cause__startswith=prefix)
        )


def make_offer(tw, *, state="sent", sent_at=None, expires_in=21 * DAY, target="business") -> Offer:
    now = timezone.now()
    with tenant_context(tw.tenant):
        return Offer.objects.create(
            tenant=tw.tenant,
            account=tw.account,
            settings_version=OfferSettings.objects.for_tenant(tw.tenant).get(state="live"),
            state=state,
            target_kind="tier",
            target_key=target,
            evidence={"sentence": "You used 92% of your API calls on 5 of the last 7 days."},
            options=[{"key": "business-month", "interval": "month", "tier_name": "Business", "amount": 49500}],
            recommended_option="business-month",
            currency="USD",
            sent_at=sent_at or now,
            expires_at=now + expires_in,
        )


# --- offers ---------------------------------------------------------------------------------------------


def test_an_offer_sends_once_then_one_reminder_a_week_later(mw):
    offer = make_offer(mw)
    now = offer.sent_at
    assert _sweep(mw, now) == 1
    assert _sweep(mw, now + datetime.timedelta(hours=1)) == 0  # run again: nothing new
    with tenant_context(mw.tenant):
        message = Message.objects.for_tenant(mw.tenant).get(cause=f"offer:{offer.pk}:sent")
        assert message.template_key == "offer-sent" and message.state in ADMITTED
        assert "92% of your API calls" in message.rendered["html"] and "$495.00" in message.rendered["html"]
    assert _sweep(mw, now + 3 * DAY) == 0
    assert _sweep(mw, now + 7 * DAY) == 1
    assert _sweep(mw, now + 8 * DAY) == 0
    assert [k for k, _, _ in _sent(mw, "offer:")] == ["offer-reminder", "offer-sent"]


def test_no_reminder_once_the_offer_was_answered(mw):
    offer = make_offer(mw)
    _sweep(mw, offer.sent_at)
    with tenant_context(mw.tenant):
        Offer.objects.for_tenant(mw.tenant).filter(pk=offer.pk).update(state="accepted")
    _sweep(mw, offer.sent_at + 7 * DAY)
    assert [k for k, _, _ in _sent(mw, "offer:")] == ["offer-sent"]


def test_an_offer_awaiting_review_or_sent_long_ago_is_not_mailed(mw):
    make_offer(mw, state="awaiting_review")
    make_offer(mw, sent_at=timezone.now() - 30 * DAY, expires_in=60 * DAY, target="sso")
    assert _sweep(mw, timezone.now()) == 0


def test_a_key_without_a_live_template_is_skipped_not_burnt(mw):
    with tenant_context(mw.tenant):
        MessageTemplate.objects.for_tenant(mw.tenant).filter(key="offer-sent").update(state="retired")
    offer = make_offer(mw)
    assert _sweep(mw, offer.sent_at) == 0
    assert _sent(mw) == []
    with tenant_context(mw.tenant):
        MessageTemplate.objects.for_tenant(mw.tenant).filter(key="offer-sent").update(state="live")
    assert _sweep(mw, offer.sent_at + DAY) == 1


# --- trials ---------------------------------------------------------------------------------------------


def _trial(mw):
    with tenant_context(mw.tenant):
        return start_trial(
            mw.tenant,
            account=mw.account,
            target_kind="tier",
            target_key="business",
            actor=mw.world.staff[Role.CSM],
            source="csm",
        )


def test_a_trial_sends_day_one_midpoint_with_wins_two_days_before_and_after_it_ended(mw):
    trial = _trial(mw)
    start = trial.starts_at
    assert _sweep(mw, start) == 1  # day 1
    assert _sweep(mw, start + 7 * DAY) == 0  # halfway, but no early wins yet: nothing to say
    with tenant_context(mw.tenant):
        ingest_events(mw.tenant, events=[event(name="export_created", rows=40)], actor="test")
    assert _sweep(mw, start + 8 * DAY) == 1  # still in the midpoint's window, now with a win
    assert _sweep(mw, start + 12 * DAY) == 1  # two days before the end
    with tenant_context(None):
        end_due_trials(now=trial.ends_at)
    assert _sweep(mw, trial.ends_at + datetime.timedelta(hours=1)) == 1
    assert _sweep(mw, trial.ends_at + DAY) == 0
    got = _sent(mw, f"trial:{trial.pk}:")
    assert [(k, c.split(":")[-1]) for k, c, _ in got] == [
        ("trial-ended", "ended"),
        ("trial-ending", "ending"),
        ("trial-midpoint", "midpoint"),
        ("trial-started", "started"),
    ]
    with tenant_context(mw.tenant):
        midpoint = Message.objects.for_tenant(mw.tenant).get(cause=f"trial:{trial.pk}:midpoint")
        assert midpoint.context["wins"] == ["You used Exports 1 time during the trial: 40 rows."]
        ended = Message.objects.for_tenant(mw.tenant).get(cause=f"trial:{trial.pk}:ended")
        assert ended.category == "transactional" and "keep all its data" not in ended.rendered["html"]
        assert "back on its current plan, with all its data" in ended.rendered["html"]


def test_an_upgraded_trial_gets_no_ending_or_ended_message(mw):
    from tests.upgrades.offers.test_trials import _settle_upgrade

    trial = _trial(mw)
    _sweep(mw, trial.starts_at)
    plan_change = _settle_upgrade(mw)
    with tenant_context(mw.tenant):
        convert_trial_on_settle(mw.tenant, account=mw.account, plan_change=plan_change)
    _sweep(mw, trial.ends_at - DAY)
    with tenant_context(None):
        end_due_trials(now=trial.ends_at)
    _sweep(mw, trial.ends_at + datetime.timedelta(hours=1))
    with tenant_context(mw.tenant):
        trial.refresh_from_db()
    assert trial.state == TrialState.CONVERTED
    assert [k for k, _, _ in _sent(mw, "trial:")] == ["trial-started"]


# --- renewals -------------------------------------------------------------------------------------------


def _annual(mw, *, renews_in: datetime.timedelta):
    now = timezone.now()
    with tenant_context(mw.tenant):
        License.objects.for_tenant(mw.tenant).filter(pk=mw.license.pk).update(
            interval="year", current_period_start=now - 200 * DAY, current_period_end=now + renews_in
        )
    return now + renews_in


def test_renewal_90_and_60_carry_the_open_offer_as_the_proposal_30_goes_without(mw):
    renews_at = _annual(mw, renews_in=95 * DAY)
    offer = make_offer(mw, sent_at=timezone.now() - 20 * DAY, expires_in=200 * DAY)
    assert _sweep(mw, renews_at - 90 * DAY) == 1
    assert _sweep(mw, renews_at - 89 * DAY) == 0
    assert _sweep(mw, renews_at - 60 * DAY) == 1
    with tenant_context(mw.tenant):
        m90 = Message.objects.for_tenant(mw.tenant).get(template_key="renewal-90")
        # The portal's signed, single-use link to this offer (upgrades.portal.tokens.offer_link).
        assert tokens.find_link(m90.context["proposal"]["url"].rsplit("/", 1)[-1]).offer_id == offer.pk
        assert m90.cause == f"renewal:{mw.license.pk}:{renews_at:%Y-%m-%d}:90"
        Offer.objects.for_tenant(mw.tenant).filter(pk=offer.pk).update(state="expired")
    assert _sweep(mw, renews_at - 30 * DAY) == 1
    assert [k for k, _, _ in _sent(mw, "renewal:")] == ["renewal-30", "renewal-60", "renewal-90"]


def test_without_an_offer_only_the_30_day_notice_is_sent_and_monthly_licences_get_none(mw):
    renews_at = _annual(mw, renews_in=91 * DAY)
    assert _sweep(mw, renews_at - 90 * DAY) == 0
    assert _sweep(mw, renews_at - 30 * DAY) == 1
    with tenant_context(mw.tenant):
        License.objects.for_tenant(mw.tenant).filter(pk=mw.license.pk).update(interval="month")
        Message.objects.for_tenant(mw.tenant).all().delete()
    assert _sweep(mw, renews_at - 30 * DAY) == 0


# --- declines -------------------------------------------------------------------------------------------


def test_a_decline_starts_the_quiet_period_and_the_follow_up_comes_when_it_ends(mw):
    offer = make_offer(mw)
    _sweep(mw, offer.sent_at)
    declined_at = offer.sent_at + DAY
    with tenant_context(mw.tenant):
        Offer.objects.for_tenant(mw.tenant).filter(pk=offer.pk).update(state="declined", closed_at=declined_at)
    assert _sweep(mw, declined_at + datetime.timedelta(minutes=1)) == 0
    with tenant_context(mw.tenant):
        quiet = DeclineQuiet.objects.for_tenant(mw.tenant).get(account=mw.account)
    assert quiet.declined_at == declined_at and quiet.quiet_until == declined_at + 14 * DAY
    assert _sweep(mw, declined_at + 7 * DAY) == 0  # no reminder of a declined offer, nothing in the quiet
    assert _sweep(mw, quiet.quiet_until) == 1
    assert _sweep(mw, quiet.quiet_until + DAY) == 0
    assert [k for k, _, _ in _sent(mw, "offer:")] == ["decline-follow-up", "offer-sent"]


# --- tenants --------------------------------------------------------------------------------------------


def test_one_tenants_sweep_sends_nothing_for_another(mw, world_b):
    other = make_message_world(world_b)
    make_offer(other)
    with tenant_context(None):
        assert messages.send_due_lifecycle_messages(tenant_id=mw.tenant.pk) == 0
    assert _sent(other) == []
    with tenant_context(None):
        assert messages.send_due_lifecycle_messages(tenant_id=other.tenant.pk) == 1
    assert _sent(mw) == []


def test_no_reminder_of_an_offer_email_that_consent_stopped(mw):
    with tenant_context(mw.tenant):
        MessagingSettings.objects.for_tenant(mw.tenant).update(require_marketing_consent=True)
        Contact.objects.for_tenant(mw.tenant).update(marketing_consent=False)
    offer = make_offer(mw)
    assert _sweep(mw, offer.sent_at) == 0
    assert _sent(mw) == [("offer-sent", f"offer:{offer.pk}:sent", MessageState.SUPPRESSED)]
    assert _sweep(mw, offer.sent_at + 7 * DAY) == 0
    assert [k for k, _, _ in _sent(mw)] == ["offer-sent"]


def test_a_multi_year_term_renews_at_its_commitment_end_not_each_year(mw):
    now = timezone.now()
    commitment_end = now + 30 * DAY + datetime.timedelta(hours=1)
    with tenant_context(mw.tenant):
        License.objects.for_tenant(mw.tenant).filter(pk=mw.license.pk).update(
            interval="year",
            term_years=3,
            current_period_start=now - 300 * DAY,
            current_period_end=now + 65 * DAY,
            commitment_ends_at=commitment_end,
        )
    assert _sweep(mw, now + 2 * DAY) == 1
    assert _sent(mw, "renewal:")[0][1] == f"renewal:{mw.license.pk}:{commitment_end:%Y-%m-%d}:30"


def test_a_sweep_that_finds_everything_sent_makes_the_same_queries_for_3_or_12_offers(mw):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import CustomerAccount

    def offers_for(n, start):
        made = []
        for i in range(start, start + n):
            with tenant_context(mw.tenant):
                account = CustomerAccount.objects.create(tenant=mw.tenant, external_id=f"q-{i}", name=f"Q{i}")
                Contact.objects.create(tenant=mw.tenant, account=account, email=f"q{i}@customer.test")
            offer = make_offer(mw)
            with tenant_context(mw.tenant):
                Offer.objects.for_tenant(mw.tenant).filter(pk=offer.pk).update(account=account)
            made.append(offer)
        return made

    def steady_state_queries(now):
        _sweep(mw, now)  # hands everything over
        with CaptureQueriesContext(connection) as captured:
            assert _sweep(mw, now) == 0
        return len(captured)

    offers_for(3, 0)
    now = timezone.now()
    few = steady_state_queries(now)
    offers_for(9, 3)
    many = steady_state_queries(now + datetime.timedelta(minutes=5))
    assert few == many
