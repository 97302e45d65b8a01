"""usage.signals.events_ingested: one send per stored batch, after commit, never for nothing stored."""

from __future__ import annotations

import pytest

from accounts.models import CustomerAccount
from usage.signals import events_ingested

from .factories import event, make_catalog

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"
CHECK = "/api/v1/entitlements/check"


@pytest.fixture
def catalog(world_a):
    return make_catalog(world_a.tenant)


@pytest.fixture
def sent():
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    events_ingested.connect(receiver, dispatch_uid="tests.usage.signals")
    yield calls
    events_ingested.disconnect(dispatch_uid="tests.usage.signals")


def test_a_stored_batch_sends_one_signal_after_commit_naming_its_accounts(
    world_a, catalog, sent, django_capture_on_commit_callbacks
):
    other = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="acct-2", name="Two")
    batch = [event(), event(), event("acct-2"), event(name="support_ticket")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert world_a.api("ingest").post(URL, {"events": batch}, format="json").json()["accepted"] == 4
    assert sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert len(sent) == 1
    signal = sent[0]
    assert signal["tenant_id"] == world_a.tenant.pk
    assert signal["account_ids"] == sorted([world_a.account.pk, other.pk])


def test_a_duplicate_only_or_all_rejected_batch_sends_nothing(
    world_a, catalog, sent, django_capture_on_commit_callbacks
):
    client = world_a.api("ingest")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"events": [event(key="k")]}, format="json")
    assert len(sent) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(URL, {"events": [event(key="k")]}, format="json").json()["duplicates"] == 1
        assert client.post(URL, {"events": [event(name="bad name!")]}, format="json").json()["rejected"] == 1
    assert len(sent) == 1


def test_a_denied_check_records_its_gate_hit_and_sends_the_signal(
    world_a, catalog, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        body = world_a.api("read").post(CHECK, {"account": "acct-1", "feature": "sso"}, format="json").json()
    assert body["allowed"] is False
    assert sent == [{"signal": events_ingested, "tenant_id": world_a.tenant.pk, "account_ids": [world_a.account.pk]}]


def test_a_failing_receiver_does_not_fail_the_ingest(world_a, catalog, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    events_ingested.connect(broken, dispatch_uid="tests.usage.broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = world_a.api("ingest").post(URL, {"events": [event()]}, format="json")
    finally:
        events_ingested.disconnect(dispatch_uid="tests.usage.broken")
    assert response.status_code == 200 and response.json()["accepted"] == 1
