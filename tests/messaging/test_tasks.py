"""Tasks load by id and call one service: the quiet-hours sweep across tenants, the fan-out send."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail

from messaging import tasks
from messaging.models import ContactPreference, Message, MessageState
from tests.messaging.conftest import add_contact, live_template, offer_context, set_settings

pytestmark = pytest.mark.django_db


def test_the_beat_sweep_releases_held_emails_of_every_tenant(two_tenants, send, django_capture_on_commit_callbacks):
    held = []
    for world in two_tenants:
        live_template(world.tenant)
        ContactPreference.objects.create(tenant=world.tenant, contact=world.contact, time_zone="Asia/Tokyo")
        # 23:00 in Tokyo on 1 Nov 2026: held until 08:00 JST (in the past now, so the sweep releases it).
        held.append(send(world, now=datetime.datetime(2026, 11, 1, 14, 0, tzinfo=datetime.UTC)))
    assert {m.state for m in held} == {MessageState.HELD}
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.release_due_messages.apply().get() == 2
    assert {Message.objects.get(pk=m.pk).state for m in held} == {MessageState.SENT}
    assert len(mail.outbox) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.release_due_messages.apply().get() == 0  # nothing twice


def test_the_fan_out_task_sends_once_per_contact_and_ignores_other_tenants_ids(
    two_tenants, django_capture_on_commit_callbacks
):
    a, b = two_tenants
    live_template(a.tenant)
    # Sent "now" (the task passes no time): no quiet hours, so the emails go at once.
    set_settings(a.tenant, account_cap_count=10, quiet_hours_start=datetime.time(0), quiet_hours_end=datetime.time(0))
    other = add_contact(a, "cto@customer.test")
    ids = [a.contact.pk, other.pk, b.contact.pk]
    for _ in range(2):  # a redelivered task
        with django_capture_on_commit_callbacks(execute=True):
            tasks.send_to_contacts.apply(args=(a.tenant.pk, ids, "offer-sent", "offer:7", offer_context(), "upgrade"))
    assert Message.objects.filter(tenant=a.tenant, cause="offer:7").count() == 2
    assert not Message.objects.filter(tenant=b.tenant).exists()
    assert len(mail.outbox) == 2
