"""The demo's templates: seeded live, valid, idempotent, and each renders for a real contact without errors."""

from __future__ import annotations

import re

import pytest

from messaging import rendering
from messaging.demo import seed_messaging_demo
from messaging.models import MessageTemplate, MessagingSettings, TemplateState
from messaging.services.sending import render_for

pytestmark = pytest.mark.django_db
COUNTDOWN = re.compile(r"\b(hurry|only \d+ (days?|hours?) left|last chance|act now|expires? (soon|in))\b", re.I)


def test_seeding_twice_gives_the_same_live_templates_and_settings(world_a):
    first = seed_messaging_demo(world_a.tenant)
    again = seed_messaging_demo(world_a.tenant)
    assert [t.pk for t in first] == [t.pk for t in again]
    assert MessageTemplate.objects.filter(tenant=world_a.tenant).count() == len(first)
    assert {t.state for t in first} == {TemplateState.LIVE}
    assert MessagingSettings.objects.filter(tenant=world_a.tenant).count() == 1


def test_every_seeded_template_renders_plainly_for_a_real_contact(world_a):
    for template in seed_messaging_demo(world_a.tenant):
        rendered = render_for(template, contact=world_a.contact, context=rendering.sample_context(template.purpose),
                              brand={"name": "Tenant A", "logo_url": "", "colour": "#1F6FEB"})  # fmt: skip
        words = " ".join(str(v) for v in rendered.values())
        assert not COUNTDOWN.search(words), (template.key, words)
        if template.channel == "email":
            assert "Hi Buyer," in rendered["text"] and "{{" not in words
