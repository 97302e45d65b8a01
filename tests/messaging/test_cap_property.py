"""The cap is never exceeded: drawn sequences of sends, and sends racing from concurrent workers.

One cap across email and CSM outreach (and prompts shown), per contact and per account, on a rolling
window. The property: for every counted message, the counted messages of its contact (and of its
account) in the window ending at it number at most the cap.
"""

from __future__ import annotations

import datetime
import threading
from collections import defaultdict

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Contact, CustomerAccount, Role, Tenant
from messaging.models import Category, Message, MessageState
from messaging.services import record_outreach, send_message
from tests.messaging.conftest import NOON_UTC, live_template, offer_context, set_settings
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


def assert_cap_held(tenant: Tenant, *, cap: int, account_cap: int, window_days: int) -> None:
    counted = list(
        Message.objects.for_tenant(tenant)
        .filter(category=Category.UPGRADE, counted_at__isnull=False)
        .values_list("contact_id", "account_id", "counted_at")
    )
    window = datetime.timedelta(days=window_days)
    by_contact, by_account = defaultdict(list), defaultdict(list)
    for contact_id, account_id, at in counted:
        by_contact[contact_id].append(at)
        by_account[account_id].append(at)
    for times, limit in [*((t, cap) for t in by_contact.values()), *((t, account_cap) for t in by_account.values())]:
        for end in times:
            assert sum(1 for t in times if end - window < t <= end) <= limit


send_op = st.tuples(
    st.integers(0, 2),  # which contact
    st.sampled_from(["email", "csm", "transactional"]),
    st.integers(0, 20 * 24),  # hours after the start
    st.integers(0, 3),  # which cause (repeats must not send twice)
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])  # fmt: skip
@given(
    ops=st.lists(send_op, min_size=1, max_size=25),
    cap=st.integers(0, 3),
    account_cap=st.integers(0, 5),
    window_days=st.integers(1, 10),
)
def test_no_drawn_sequence_of_sends_exceeds_the_cap(db, ops, cap, account_cap, window_days):
    with transaction.atomic():
        tenant = Tenant.objects.create(slug="prop", name="Prop")
        account = CustomerAccount.objects.create(tenant=tenant, external_id="p", name="P")
        contacts = [Contact.objects.create(tenant=tenant, account=account, email=f"c{n}@p.test") for n in range(3)]
        live_template(tenant)
        live_template(tenant, key="receipt", purpose="receipt", subject="R", html_body="<p>R</p>")
        set_settings(tenant, cap_count=cap, account_cap_count=account_cap, cap_window_days=window_days,
                     quiet_hours_start=datetime.time(0, 0), quiet_hours_end=datetime.time(0, 0))  # fmt: skip
        for who, kind, hours, cause in sorted(ops, key=lambda op: op[2]):
            now = NOON_UTC + datetime.timedelta(hours=hours)
            if kind == "csm":
                record_outreach(tenant, contact=contacts[who], cause=f"call:{cause}", actor="test", at=now)
            else:
                category = "transactional" if kind == "transactional" else "upgrade"
                key = "receipt" if kind == "transactional" else "offer-sent"
                send_message(
                    tenant,
                    contact=contacts[who],
                    template_key=key,
                    cause=f"c:{cause}",
                    context=offer_context(),
                    category=category,
                    now=now,
                )
        assert_cap_held(tenant, cap=cap, account_cap=account_cap, window_days=window_days)
        keys = Message.objects.for_tenant(tenant).values_list("contact_id", "template_key", "cause")
        assert len(keys) == len(set(keys))
        transaction.set_rollback(True)


@pytest.mark.integration
def test_concurrent_workers_never_exceed_the_cap(transactional_db, world_a):
    """Eight threads (each its own database connection) race to send to one account's contacts."""
    require_postgres()
    live_template(world_a.tenant)
    others = [Contact.objects.create(tenant=world_a.tenant, account=world_a.account, email=f"x{n}@c.test")
              for n in range(2)]  # fmt: skip
    contacts = [world_a.contact, *others]
    set_settings(world_a.tenant, cap_count=2, account_cap_count=3)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for round_ in range(4):
                contact = contacts[(n + round_) % len(contacts)]
                if n % 4 == 3:
                    record_outreach(world_a.tenant, contact=contact, cause=f"call:{n}:{round_}",
                                    actor=world_a.staff[Role.CSM], at=NOON_UTC)  # fmt: skip
                else:
                    send_message(world_a.tenant, contact=contact, template_key="offer-sent",
                                 cause=f"offer:{round_ % 2}", context=offer_context(), category="upgrade",
                                 now=NOON_UTC)  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    rows = Message.objects.for_tenant(world_a.tenant)
    assert rows.filter(counted_at__isnull=False).count() == 3  # the account cap, exactly
    assert (
        rows.filter(state=MessageState.SUPPRESSED).exclude(suppressed_reason__in=["contact_cap", "account_cap"]).count()
        == 0
    )
    assert_cap_held(world_a.tenant, cap=2, account_cap=3, window_days=7)
    keys = list(rows.values_list("contact_id", "template_key", "cause"))
    assert len(keys) == len(set(keys))  # no (contact, template, cause) twice, however many raced
