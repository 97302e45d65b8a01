"""Delivery end to end: a real SMTP server (aiosmtpd) receives the email; a provider's verified bounce
webhook (django-anymail, Postmark's shape) stops further sends to the address."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from messaging import tokens
from messaging.models import EmailSuppression, MessageState
from tests.messaging.conftest import live_template
from tests.services import free_port

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp_inbox(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = "https://tierwise.test"
    yield inbox
    controller.stop()


def test_an_email_arrives_over_smtp_with_one_click_unsubscribe_and_a_plain_part(world_a, send, smtp_inbox):
    live_template(world_a.tenant)
    message = send(world_a)
    message.refresh_from_db()
    assert message.state == MessageState.SENT
    assert len(smtp_inbox.messages) == 1
    received = smtp_inbox.messages[0]
    assert received["To"] == world_a.contact.email
    assert received["Subject"] == "Tenant A Customer: Team may fit"
    header = received["List-Unsubscribe"].strip()  # a long header arrives folded
    assert header.startswith("<https://tierwise.test/m/u/") and header.endswith(">")
    token = tokens.read(tokens.UNSUBSCRIBE, header[1:-1].rsplit("/", 1)[1])
    assert (token.tenant_id, token.object_id) == (world_a.tenant.pk, world_a.contact.pk)
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["X-Tierwise-Message"] == str(message.pk)
    plain = received.get_body(preferencelist=("plain",)).get_content()
    html = received.get_body(preferencelist=("html",)).get_content()
    assert "Hi Buyer," in plain and "<" not in plain.split("--")[0]
    assert "See the offer (https://example.com/portal/offer/1)" in plain
    assert "Unsubscribe: https://tierwise.test/m/u/" in plain
    assert "/m/c/" in html and "Unsubscribe</a>" in html


def _postmark_bounce(recipient: str, metadata: dict, type_: str = "HardBounce") -> dict:
    return {
        "RecordType": "Bounce", "ID": 42, "Type": type_, "TypeCode": 1, "MessageID": "pm-1", "Email": recipient,
        "BouncedAt": "2026-11-02T12:00:00Z", "Description": "The mailbox does not exist.", "Details": "550 5.1.1",
        "Metadata": metadata, "Inactive": True, "CanActivate": True, "Subject": "x", "Tag": "offer-sent",
    }  # fmt: skip


@pytest.fixture
def anymail_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret-value"}
    return "Basic " + base64.b64encode(b"hook:s3cret-value").decode()


def test_a_verified_hard_bounce_stops_every_later_send(world_a, send, anymail_secret):
    live_template(world_a.tenant)
    first = send(world_a, cause="offer:1")
    payload = _postmark_bounce(
        world_a.contact.email, {"tw_tenant": str(world_a.tenant.pk), "tw_message": str(first.pk)}
    )
    answer = Client().post("/m/anymail/postmark/tracking/", payload, content_type="application/json",
                           HTTP_AUTHORIZATION=anymail_secret)  # fmt: skip
    assert answer.status_code == 200, answer.content
    assert EmailSuppression.objects.get(tenant=world_a.tenant).email == world_a.contact.email
    first.refresh_from_db()
    assert first.state == MessageState.BOUNCED
    assert send(world_a, cause="offer:2").suppressed_reason == "bounced"


def test_an_unverified_webhook_changes_nothing(world_a, anymail_secret):
    payload = _postmark_bounce(world_a.contact.email, {"tw_tenant": str(world_a.tenant.pk)})
    for auth in ("", "Basic " + base64.b64encode(b"hook:wrong").decode()):
        answer = Client().post("/m/anymail/postmark/tracking/", payload, content_type="application/json",
                               HTTP_AUTHORIZATION=auth)  # fmt: skip
        assert answer.status_code in (400, 403)
    assert not EmailSuppression.objects.exists()


def test_a_bounce_names_only_its_own_tenant(two_tenants, send, anymail_secret):
    a, b = two_tenants  # the same address is a contact of both tenants
    payload = _postmark_bounce(a.contact.email, {"tw_tenant": str(a.tenant.pk)})
    Client().post("/m/anymail/postmark/tracking/", payload, content_type="application/json",
                  HTTP_AUTHORIZATION=anymail_secret)  # fmt: skip
    assert list(EmailSuppression.objects.values_list("tenant_id", flat=True)) == [a.tenant.pk]
    live_template(b.tenant)
    assert send(b).state == MessageState.QUEUED
