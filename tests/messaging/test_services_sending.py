"""send_message: once per (contact, template, cause); the cap, consent, a decline's quiet period, bounces."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail

from accounts.models import Role
from messaging import rendering
from messaging.models import ContactPreference, Message, MessageState
from messaging.services import (
    note_decline,
    record_bounce,
    record_outreach,
    release_due_messages,
    unsubscribe,
)
from tests.messaging.conftest import NOON_UTC, add_contact, live_template, offer_context, set_settings

pytestmark = pytest.mark.django_db
RECEIPT = rendering.sample_context("receipt")


@pytest.fixture(autouse=True)
def templates(world_a):
    live_template(world_a.tenant, key="offer-sent")
    live_template(world_a.tenant, key="offer-reminder", purpose="offer_reminder")
    live_template(world_a.tenant, key="receipt", purpose="receipt", subject="Receipt {{ invoice.number }}",
                  html_body="<p>Paid {{ invoice.amount }}</p>")  # fmt: skip
    live_template(world_a.tenant, key="trial-started", purpose="trial_started", subject="Trial {{ trial.tier }}",
                  html_body="<p>Trial of {{ trial.tier }}</p>")  # fmt: skip


def test_the_same_cause_sends_once_and_returns_the_first_message(world_a, send):
    first = send(world_a)
    again = send(world_a)
    assert first.pk == again.pk and first.state == MessageState.QUEUED
    assert Message.objects.filter(tenant=world_a.tenant).count() == 1
    assert len(mail.outbox) == 1
    first.refresh_from_db()
    assert first.state == MessageState.SENT and first.sent_at is not None


def test_the_third_upgrade_message_in_a_week_is_suppressed_with_its_reason(world_a, send):
    send(world_a, cause="offer:1")
    send(world_a, key="offer-reminder", cause="offer:1", now=NOON_UTC + datetime.timedelta(days=2))
    third = send(world_a, cause="offer:2", now=NOON_UTC + datetime.timedelta(days=3))
    assert (third.state, third.suppressed_reason) == (MessageState.SUPPRESSED, "contact_cap")
    eighth_day = send(world_a, cause="offer:3", now=NOON_UTC + datetime.timedelta(days=7, minutes=1))
    assert eighth_day.state == MessageState.QUEUED  # the first left the rolling window


def test_the_account_cap_spans_its_contacts(world_a, send):
    set_settings(world_a.tenant, cap_count=2, account_cap_count=2)
    other, third = add_contact(world_a, "cto@customer.test"), add_contact(world_a, "cfo@customer.test")
    send(world_a, cause="offer:1")
    send(world_a, contact=other, cause="offer:1")
    blocked = send(world_a, contact=third, cause="offer:1")
    assert blocked.suppressed_reason == "account_cap"


def test_transactional_mail_bypasses_the_cap_and_quiet_hours_but_not_a_bounce(world_a, send):
    set_settings(world_a.tenant, cap_count=0, account_cap_count=0)
    assert send(world_a, cause="offer:1").suppressed_reason == "contact_cap"
    night = datetime.datetime(2026, 11, 2, 23, 0, tzinfo=datetime.UTC)
    receipt = send(world_a, key="receipt", cause="invoice:1", category="transactional", context=RECEIPT, now=night)
    assert receipt.state == MessageState.QUEUED and receipt.due_at == night
    record_bounce(world_a.tenant, email=world_a.contact.email, kind="bounced")
    after = send(world_a, key="receipt", cause="invoice:2", category="transactional", context=RECEIPT)
    assert (after.state, after.suppressed_reason) == (MessageState.SUPPRESSED, "bounced")


def test_a_decline_quiets_upgrade_messages_for_the_tenants_days(world_a, send):
    set_settings(world_a.tenant, decline_quiet_days=14)
    note_decline(world_a.tenant, account=world_a.account, at=NOON_UTC)
    quiet = send(world_a, cause="offer:2", now=NOON_UTC + datetime.timedelta(days=13))
    assert quiet.suppressed_reason == "decline_quiet"
    later = send(world_a, cause="offer:3", now=NOON_UTC + datetime.timedelta(days=15))
    assert later.state == MessageState.QUEUED


def test_unsubscribed_opted_out_and_no_consent_are_recorded(world_a, send):
    unsubscribe(world_a.tenant, contact=world_a.contact, source="test")
    assert send(world_a, cause="offer:1").suppressed_reason == "unsubscribed"
    assert (
        send(world_a, key="receipt", cause="invoice:1", category="transactional", context=RECEIPT).state
        == MessageState.QUEUED
    )
    other = add_contact(world_a, "cto@customer.test")
    ContactPreference.objects.create(tenant=world_a.tenant, contact=other, upgrade_email=False)
    assert send(world_a, contact=other, cause="offer:1").suppressed_reason == "opted_out"
    set_settings(world_a.tenant, require_marketing_consent=True)
    third = add_contact(world_a, "cfo@customer.test", marketing_consent=False)
    assert send(world_a, contact=third, cause="offer:1").suppressed_reason == "no_consent"


def test_a_missing_template_or_variable_is_recorded_not_raised(world_a, send):
    missing = send(world_a, key="no-such-template")
    assert (missing.state, missing.suppressed_reason) == (MessageState.SUPPRESSED, "no_live_template")
    broken = send(world_a, key="trial-started", cause="trial:1", context={})
    assert broken.state == MessageState.FAILED and "'trial' is undefined" in broken.error


def test_quiet_hours_hold_until_the_edge_and_the_sweep_releases(world_a, send, django_capture_on_commit_callbacks):
    ContactPreference.objects.create(tenant=world_a.tenant, contact=world_a.contact, time_zone="America/New_York")
    night = datetime.datetime(2026, 11, 3, 3, 0, tzinfo=datetime.UTC)  # 22:00 in New York
    held = send(world_a, now=night)
    assert held.state == MessageState.HELD
    assert held.due_at == datetime.datetime(2026, 11, 3, 13, 0, tzinfo=datetime.UTC)  # 08:00 New York
    assert held.counted_at is not None  # a held email keeps its slot
    with django_capture_on_commit_callbacks(execute=True):
        assert release_due_messages(world_a.tenant, now=held.due_at - datetime.timedelta(minutes=1)) == 0
    assert len(mail.outbox) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert release_due_messages(world_a.tenant, now=held.due_at) == 1
    held.refresh_from_db()
    assert held.state == MessageState.SENT and len(mail.outbox) == 1


def test_an_unsubscribe_suppresses_what_is_held(world_a, send):
    ContactPreference.objects.create(tenant=world_a.tenant, contact=world_a.contact, time_zone="Europe/London")
    held = send(world_a, now=datetime.datetime(2026, 11, 2, 23, 0, tzinfo=datetime.UTC))
    unsubscribe(world_a.tenant, contact=world_a.contact, source="test")
    held.refresh_from_db()
    assert (held.state, held.suppressed_reason, held.counted_at) == (MessageState.SUPPRESSED, "unsubscribed", None)


def test_a_bounce_stops_every_later_send_to_the_address(world_a, send):
    first = send(world_a, cause="offer:1")
    first.refresh_from_db()
    record_bounce(world_a.tenant, email="BUYER@customer.test", kind="bounced", message_id=first.pk)
    first.refresh_from_db()
    assert first.state == MessageState.BOUNCED
    assert send(world_a, cause="offer:2").suppressed_reason == "bounced"
    assert len(mail.outbox) == 1


def test_csm_outreach_counts_against_the_same_cap(world_a, send):
    csm = world_a.staff[Role.CSM]
    one = record_outreach(world_a.tenant, contact=world_a.contact, cause="call:1", actor=csm, at=NOON_UTC)
    two = record_outreach(world_a.tenant, contact=world_a.contact, cause="call:2", actor=csm, at=NOON_UTC)
    assert one.state == two.state == MessageState.SENT
    assert send(world_a, cause="offer:1").suppressed_reason == "contact_cap"
    assert record_outreach(world_a.tenant, contact=world_a.contact, cause="call:3", actor=csm,
                           at=NOON_UTC).suppressed_reason == "contact_cap"  # fmt: skip


def test_another_tenants_contact_is_not_found(two_tenants, send):
    from messaging.errors import NotFound

    a, b = two_tenants
    with pytest.raises(NotFound):
        send(a, contact=b.contact)


def test_variants_split_stably_by_contact(world_a, send):
    live_template(world_a.tenant, key="offer-sent", variant="b", subject="B: {{ offer.tier }}")
    contacts = [add_contact(world_a, f"p{n}@customer.test") for n in range(12)]
    set_settings(world_a.tenant, account_cap_count=50)
    variants = {send(world_a, contact=c, cause="offer:1").variant for c in contacts}
    assert variants == {"a", "b"}
    again = send(world_a, contact=contacts[0], cause="offer:9", now=NOON_UTC + datetime.timedelta(days=1))
    assert again.variant == Message.objects.get(contact=contacts[0], cause="offer:1").variant


def test_a_batch_decides_as_the_same_sends_one_by_one_would(world_a, django_capture_on_commit_callbacks):
    from messaging.services import send_messages

    set_settings(world_a.tenant, cap_count=2, account_cap_count=2)
    contacts = [world_a.contact, add_contact(world_a, "cto@customer.test"), add_contact(world_a, "cfo@customer.test")]
    with django_capture_on_commit_callbacks(execute=True):
        rows = send_messages(world_a.tenant, contacts=contacts, template_key="offer-sent", cause="offer:1",
                             context=offer_context(), category="upgrade", now=NOON_UTC)  # fmt: skip
    assert [r.state for r in rows] == ["queued", "queued", "suppressed"]
    assert rows[2].suppressed_reason == "account_cap"
    again = send_messages(world_a.tenant, contacts=contacts[::-1], template_key="offer-sent", cause="offer:1",
                          context=offer_context(), category="upgrade", now=NOON_UTC)  # fmt: skip
    assert [r.pk for r in again] == [r.pk for r in rows[::-1]]
    assert len(mail.outbox) == 2
