"""The one statement behind GET /api/v1/accounts/{external_id}/prompts (messaging.selectors.read_due_prompts).

It replaced three ORM queries (account, contact, prompts) for speed (issue 16): these pin that it loads
the same rows the ORM would, and keeps every rule the ORM query had.
"""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from messaging import rendering
from messaging.models import Category, Channel, ContactPreference, Message, MessageState
from messaging.selectors import read_due_prompts
from messaging.services import due_prompts, note_decline
from tests.messaging.conftest import add_contact, live_template

pytestmark = pytest.mark.django_db
GATE = rendering.sample_context("feature_gate")
PAST = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)
NOW = PAST + datetime.timedelta(hours=1)


@pytest.fixture
def gates(world_a, send):
    """Two upgrade prompts in two placements and a transactional one, all for the world's contact."""
    live_template(world_a.tenant, key="gate-sso", purpose="feature_gate", channel="in_app")
    live_template(world_a.tenant, key="gate-audit", purpose="feature_gate", channel="in_app", placement="audit")
    live_template(world_a.tenant, key="card", purpose="feature_gate", channel="in_app", placement="billing")
    return [
        send(world_a, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST),
        send(world_a, key="gate-audit", cause="gate:audit", channel="in_app", context=GATE, now=PAST),
        send(world_a, key="card", cause="card:1", channel="in_app", context=GATE, category="transactional", now=PAST),
    ]


def _loaded(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_the_statement_loads_the_rows_the_orm_loads(world_a, gates):
    read = read_due_prompts(world_a.tenant, now=NOW, external_id="acct-1")
    assert read.account_id == world_a.account.pk and read.external_id == "acct-1" and read.contact_found
    orm = list(
        Message.objects.filter(pk__in=[g.pk for g in gates]).select_related("contact").order_by("created_at", "id")
    )
    assert [_loaded(p) for p in read.prompts] == [_loaded(p) for p in orm]
    assert [_loaded(p.contact) for p in read.prompts] == [_loaded(p.contact) for p in orm]
    assert all(isinstance(p.rendered, dict) and not p._state.adding for p in read.prompts)
    narrowed = read_due_prompts(world_a.tenant, now=NOW, account_id=world_a.account.pk, placement="audit")
    assert [p.pk for p in narrowed.prompts] == [gates[1].pk]


def test_an_unknown_account_and_an_unknown_contact_are_told_apart(world_a, gates):
    assert read_due_prompts(world_a.tenant, now=NOW, external_id="no-such").account_id is None
    stranger = read_due_prompts(world_a.tenant, now=NOW, external_id="acct-1", contact_email="nobody@x.test")
    assert stranger.account_id == world_a.account.pk and not stranger.contact_found and stranger.prompts == []


def test_a_contact_is_matched_by_email_in_any_case_and_narrows_the_prompts(world_a, send, gates):
    cto = add_contact(world_a, "cto@customer.test")
    theirs = send(world_a, contact=cto, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST)
    read = read_due_prompts(world_a.tenant, now=NOW, external_id="acct-1", contact_email="CTO@Customer.TEST")
    assert read.contact_found and [p.pk for p in read.prompts] == [theirs.pk]
    assert read.prompts[0].contact.email == "cto@customer.test"
    mine = read_due_prompts(world_a.tenant, now=NOW, external_id="acct-1", contact_id=world_a.contact.pk)
    assert [p.pk for p in mine.prompts] == [g.pk for g in gates]


def test_held_and_not_yet_due_prompts_wait_and_emails_are_never_prompts(world_a, send, gates):
    live_template(world_a.tenant)
    send(world_a, cause="offer:1", now=PAST)  # an email for the same account
    Message.objects.filter(pk=gates[0].pk).update(state=MessageState.HELD, due_at=NOW + datetime.timedelta(hours=8))
    Message.objects.filter(pk=gates[1].pk).update(due_at=NOW + datetime.timedelta(minutes=1))
    assert [p.pk for p in read_due_prompts(world_a.tenant, now=NOW, external_id="acct-1").prompts] == [gates[2].pk]
    later = NOW + datetime.timedelta(minutes=2)
    assert [p.pk for p in read_due_prompts(world_a.tenant, now=later, external_id="acct-1").prompts] == [
        gates[1].pk,
        gates[2].pk,
    ]
    assert all(
        p.channel == Channel.IN_APP
        for p in read_due_prompts(world_a.tenant, now=later, account_id=world_a.account.pk).prompts
    )


def test_in_app_off_unsubscribed_or_a_decline_hides_upgrade_prompts_not_transactional_ones(world_a, gates):
    """The statement's own wall, behind the services that suppress pending prompts when a choice changes."""
    pref = ContactPreference.objects.create(tenant=world_a.tenant, contact=world_a.contact, in_app=False)

    def due() -> list[int]:
        return [p.pk for p in read_due_prompts(world_a.tenant, now=NOW, external_id="acct-1").prompts]

    assert due() == [gates[2].pk] and gates[2].category == Category.TRANSACTIONAL
    pref.in_app = True
    pref.save()
    assert due() == [g.pk for g in gates]
    pref.unsubscribed_at = PAST
    pref.save()
    assert due() == [gates[2].pk]
    pref.unsubscribed_at = None
    pref.save()
    note_decline(world_a.tenant, account=world_a.account, at=PAST)
    assert due() == [gates[2].pk]


def test_another_tenants_account_is_not_found_by_external_id_or_id(two_tenants, send):
    a, b = two_tenants
    live_template(b.tenant, key="gate-sso", purpose="feature_gate", channel="in_app")
    send(b, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST)
    assert read_due_prompts(a.tenant, now=NOW, account_id=b.account.pk).account_id is None
    assert read_due_prompts(a.tenant, now=NOW, external_id="acct-1").prompts == []  # A's own acct-1 has none
    from messaging.errors import NotFound

    with pytest.raises(NotFound):
        due_prompts(a.tenant, account=b.account, now=NOW)


def test_a_first_fetch_reserves_its_slots_in_one_read_under_the_lock(world_a, gates, django_assert_num_queries):
    """Handing out new prompts: the read, then the lock, the settings, one read of the slots, the update."""
    locking = 1 if connection.vendor == "postgresql" else 0  # SQLite serialises writers itself: no advisory lock
    with django_assert_num_queries(6 + locking):  # + the savepoint and its release (the test's transaction)
        due = due_prompts(world_a.tenant, account=world_a.account, now=NOW)
    assert [p.pk for p in due] == [g.pk for g in gates]
    assert all(p.counted_at == NOW for p in due[:2]) and due[2].counted_at is None
    with django_assert_num_queries(1):
        again = due_prompts(world_a.tenant, account=world_a.account, now=NOW)
    assert [(p.pk, p.counted_at) for p in again] == [(p.pk, p.counted_at) for p in due]
