"""Two fetches of the prompts at the same moment cannot both take the last slot of the cap.

Each thread is its own database connection (a separate web process in production). Before the fix
both fetches saw room, both handed out a prompt and the product showed one over the cap.
"""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection

from messaging import rendering
from messaging.models import Category, Message
from messaging.services import due_prompts, send_message
from tests.messaging.conftest import live_template, set_settings
from tests.services import require_postgres

pytestmark = pytest.mark.django_db
GATE = rendering.sample_context("feature_gate")
PAST = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)
NOW = PAST + datetime.timedelta(hours=1)


@pytest.mark.integration
def test_concurrent_prompt_fetches_never_exceed_the_cap(transactional_db, world_a):
    require_postgres()
    for n in range(4):
        live_template(world_a.tenant, key=f"gate-{n}", purpose="feature_gate", channel="in_app", placement="gate")
        send_message(world_a.tenant, contact=world_a.contact, template_key=f"gate-{n}", cause=f"gate:{n}",
                     context=GATE, category="upgrade", channel="in_app", now=PAST)  # fmt: skip
    set_settings(world_a.tenant, cap_count=2, account_cap_count=2)
    barrier = threading.Barrier(6)
    handed: list[set[int]] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            barrier.wait()
            handed.append({p.pk for p in due_prompts(world_a.tenant, account=world_a.account, now=NOW)})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    counted = Message.objects.for_tenant(world_a.tenant).filter(category=Category.UPGRADE, counted_at__isnull=False)
    assert counted.count() == 2  # the cap, exactly: no fetch went one over
    seen = set().union(*handed)
    assert seen == set(counted.values_list("pk", flat=True))  # only prompts holding a slot were handed out
    assert all(len(h) == 2 for h in handed)  # every fetch sees the same two (a slot, once taken, stays due)


def test_a_handed_out_prompt_holds_its_slot_and_an_email_then_waits(world_a, send):
    live_template(world_a.tenant)
    live_template(world_a.tenant, key="gate-sso", purpose="feature_gate", channel="in_app")
    prompt = send(world_a, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST)
    set_settings(world_a.tenant, cap_count=1, account_cap_count=1)
    assert [p.pk for p in due_prompts(world_a.tenant, account=world_a.account, now=NOW)] == [prompt.pk]
    prompt.refresh_from_db()
    assert prompt.counted_at == NOW
    email = send(world_a, cause="offer:9", now=NOW + datetime.timedelta(minutes=1))
    assert email.state == "suppressed" and email.suppressed_reason == "contact_cap"
    assert [p.pk for p in due_prompts(world_a.tenant, account=world_a.account, now=NOW)] == [prompt.pk]


def test_a_warm_fetch_is_read_only_in_two_queries(world_a, send, django_assert_num_queries):
    """Once every due prompt holds its slot a fetch takes no lock and writes nothing: the API key, then the
    account with its due prompts and their contacts in one statement (issue 16)."""
    live_template(world_a.tenant, key="gate-sso", purpose="feature_gate", channel="in_app")
    send(world_a, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST)
    api = world_a.api("read")
    assert len(api.get("/api/v1/accounts/acct-1/prompts?placement=feature_gate").json()["prompts"]) == 1
    with django_assert_num_queries(2):
        answer = api.get("/api/v1/accounts/acct-1/prompts?placement=feature_gate")
    assert [p["template"] for p in answer.json()["prompts"]] == ["gate-sso"]
