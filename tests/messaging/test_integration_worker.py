"""A real Celery worker delivers queued emails after commit; a task delivered twice sends once."""

from __future__ import annotations

import datetime

import pytest

from accounts.models import Contact
from messaging import tasks
from messaging.models import Message, MessageEvent, MessageState
from messaging.services import send_message
from tests.conftest import wait_for
from tests.messaging.conftest import NOON_UTC, live_template, offer_context, set_settings

pytestmark = [pytest.mark.integration]


def test_a_real_worker_delivers_each_email_once(celery_worker_process, world_a):
    live_template(world_a.tenant)
    # No quiet hours: the worker delivers at the wall-clock time, whatever time of day the suite runs.
    no_quiet = datetime.time(0)
    set_settings(world_a.tenant, account_cap_count=20, quiet_hours_start=no_quiet, quiet_hours_end=no_quiet)
    contacts = [Contact.objects.create(tenant=world_a.tenant, account=world_a.account, email=f"w{n}@c.test")
                for n in range(5)]  # fmt: skip
    sent = [
        send_message(
            world_a.tenant,
            contact=c,
            template_key="offer-sent",
            cause="offer:1",
            context=offer_context(),
            category="upgrade",
            now=NOON_UTC,
        )  # fmt: skip
        for c in contacts
    ]
    ids = [m.pk for m in sent]
    tasks.deliver_message.delay(world_a.tenant.pk, ids[0])  # a redelivered task: must not send again
    wait_for(lambda: Message.objects.filter(pk__in=ids, state=MessageState.SENT).count() == 5, timeout=60)
    tasks.deliver_message.delay(world_a.tenant.pk, ids[0])  # again, after it was sent
    late = Contact.objects.create(tenant=world_a.tenant, account=world_a.account, email="late@c.test")
    marker = send_message(world_a.tenant, contact=late, template_key="offer-sent", cause="offer:1",
                          context=offer_context(), category="upgrade", now=NOON_UTC)  # fmt: skip
    # One worker process takes tasks in order: once the marker is sent, the repeat has run.
    wait_for(lambda: Message.objects.filter(pk=marker.pk, state=MessageState.SENT).exists(), timeout=60)
    assert MessageEvent.objects.filter(message_id__in=ids, kind="sent").count() == 5
