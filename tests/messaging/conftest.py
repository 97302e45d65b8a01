"""Messaging fixtures: live templates written like a PM's, and sending with on-commit effects run."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from accounts.models import Contact
from messaging import rendering
from messaging.models import MessageTemplate, MessagingSettings, TemplateState
from messaging.services.templates import validate_template

NOON_UTC = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)  # 12:00 in London: outside quiet hours

OFFER_HTML = (
    "<p>Hi {{ contact.first_name }},</p><ul>{% for line in evidence %}<li>{{ line }}</li>{% endfor %}</ul>"
    "<p>{{ similar_customers }}</p><p>{{ offer.tier }} costs {{ price.amount }} a {{ price.interval }}.</p>"
    '<p><a href="{{ offer.url }}">See the offer</a></p>'
)


def live_template(tenant, *, key: str = "offer-sent", purpose: str = "offer_sent", variant: str = "a", **fields: Any):
    defaults: dict[str, Any] = {"name": f"Template {key}", "channel": "email"}
    if fields.get("channel", "email") == "email":
        defaults.update(subject="{{ account.name }}: {{ offer.tier }} may fit", html_body=OFFER_HTML)
    else:
        defaults.update(
            title="{{ feature.name }} is in {{ offer.tier }}",
            body="It costs {{ price.amount }}.",
            cta_label="See {{ offer.tier }}",
            cta_url="{{ offer.url }}",
            placement="feature_gate",
        )
    defaults.update(fields)
    template = MessageTemplate(tenant=tenant, key=key, purpose=purpose, variant=variant, **defaults)
    validate_template(template)
    template.state = TemplateState.LIVE
    template.save()
    return template


def offer_context() -> dict[str, Any]:
    return rendering.sample_context("offer_sent")


def set_settings(tenant, **fields: Any) -> MessagingSettings:
    prefs, _ = MessagingSettings.objects.get_or_create(tenant=tenant)
    for name, value in fields.items():
        setattr(prefs, name, value)
    prefs.save()
    return prefs


def add_contact(world, email: str, **fields: Any) -> Contact:
    return Contact.objects.create(tenant=world.tenant, account=world.account, email=email, **fields)


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """send_message with on-commit callbacks (the delivery task, eager in tests) run."""
    from messaging.services import send_message

    def _send(world, *, contact=None, key="offer-sent", cause="offer:1", category="upgrade", channel="email",
              context=None, now=NOON_UTC, **kwargs):  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            return send_message(world.tenant, contact=contact or world.contact, template_key=key, cause=cause,
                                context=offer_context() if context is None else context, category=category,
                                channel=channel, now=now, **kwargs)  # fmt: skip

    return _send
