"""seed_demo wires the messaging demo in before the offers demo: live templates exist when offers are
sent, and a second run changes nothing (no new template, settings row or message)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Tenant
from messaging.demo import EMAILS, PROMPTS, REVISION
from messaging.models import Message, MessageTemplate, MessagingSettings, TemplateState

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--accounts", "40", stdout=out)
    return out.getvalue()


def picture(tenant: Tenant) -> dict:
    return {
        "templates": sorted(
            MessageTemplate.objects.for_tenant(tenant).values_list("key", "variant", "version", "state")
        ),
        "settings": MessagingSettings.objects.for_tenant(tenant).count(),
        "messages": sorted(Message.objects.for_tenant(tenant).values_list("contact_id", "template_key", "cause")),
    }


def test_seed_demo_makes_every_demo_template_live_and_is_idempotent():
    out = seed()
    acme = Tenant.objects.get(slug="acme")
    first = picture(acme)
    assert {key for key, *_ in first["templates"]} == {spec["key"] for spec in EMAILS + PROMPTS}
    live = [(key, version) for key, _, version, state in first["templates"] if state == TemplateState.LIVE]
    assert sorted(key for key, _ in live) == sorted(spec["key"] for spec in EMAILS + PROMPTS)  # one live each
    # one template has a history: version 2 drafted by one PM and approved by the other, version 1 retired
    revised = MessageTemplate.objects.for_tenant(acme).filter(key=REVISION["key"]).order_by("version")
    assert [(t.version, t.state) for t in revised] == [(1, TemplateState.RETIRED), (2, TemplateState.LIVE)]
    assert revised[1].subject == REVISION["subject"] != revised[0].subject
    assert (revised[1].created_by.email, revised[1].approved_by.email) == ("pm@acme.test", "pm2@acme.test")
    assert {state for *_, state in first["templates"]} == {TemplateState.LIVE, TemplateState.RETIRED}
    assert first["settings"] == 1
    assert f"Messaging: {len(EMAILS + PROMPTS)} live templates" in out
    # the second tenant is not given the demo's templates
    assert not MessageTemplate.objects.for_tenant(Tenant.objects.get(slug="globex")).exists()
    seed()
    assert picture(acme) == first
