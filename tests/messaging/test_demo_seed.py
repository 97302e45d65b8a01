"""seed_demo wires the messaging demo in before the offers demo: live templates exist when offers are
sent, and a second run changes nothing (no new template, settings row or message)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Tenant
from messaging.demo import EMAILS, PROMPTS
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
    assert {state for *_, state in first["templates"]} == {TemplateState.LIVE}
    assert first["settings"] == 1
    assert f"Messaging: {len(EMAILS + PROMPTS)} live templates" in out
    # the second tenant is not given the demo's templates
    assert not MessageTemplate.objects.for_tenant(Tenant.objects.get(slug="globex")).exists()
    seed()
    assert picture(acme) == first
