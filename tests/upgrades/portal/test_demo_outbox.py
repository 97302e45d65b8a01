"""seed_demo leaves the seeded offers' emails in the outbox (the real lifecycle sweep, through messaging),
and the link in one opens that offer in the portal; a second run sends nothing more."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import Tenant
from accounts.tenancy import tenant_context
from messaging.models import Message, OutboxEmail
from upgrades.offers.models import Offer
from upgrades.portal.demo import seed_portal_demo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outbox_backend(settings):
    settings.EMAIL_BACKEND = "messaging.backends.OutboxEmailBackend"


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--accounts", "40", stdout=out)
    return out.getvalue()


def test_the_outbox_holds_the_sent_offers_emails_and_their_links_open_the_offer(outbox_backend):
    out = _seed()
    acme = Tenant.objects.get(slug="acme")
    with tenant_context(acme):
        # Seeded in a contact's quiet hours, an email waits for their end; the demo's next run then sends it.
        held = Message.objects.for_tenant(acme).filter(template_key="offer-sent", state="held")
        if held.exists():
            assert seed_portal_demo(acme, now=max(m.due_at for m in held)) >= 1
        sent = list(Message.objects.for_tenant(acme).filter(template_key="offer-sent", state="sent"))
        assert sent, list(
            Message.objects.for_tenant(acme).values_list("template_key", "state", "cause", "suppressed_reason")
        )
        emails = [e for e in OutboxEmail.objects.filter(tenant=acme) if sent[0].contact.email in e.to]
    assert emails and "Outbox:" in out
    body = emails[0].text_body + emails[0].html_body
    links = re.findall(r"https?://[^\s\"'<>]+", body)
    client = Client()
    opened = None
    for link in links:
        path = re.sub(r"^https?://[^/]+", "", link).replace("&amp;", "&")
        response = client.get(path)
        while response.status_code in (301, 302) and response["Location"].startswith(("/", "http")):
            path = re.sub(r"^https?://[^/]+", "", response["Location"])
            response = client.get(path)
        if response.status_code == 200 and b"Open the portal" in response.content:
            opened = client.post(path)
            break
    assert opened is not None, links
    assert opened.status_code == 302 and opened["Location"].startswith("/portal/offers/")
    page = client.get(opened["Location"])
    assert page.status_code == 200 and b"An offer for" in page.content
    with tenant_context(acme):
        offer_ids = set(Offer.objects.for_tenant(acme).values_list("pk", flat=True))
        assert int(sent[0].cause.split(":")[1]) in offer_ids
        count = Message.objects.for_tenant(acme).filter(cause__startswith="offer:").count()
    outbox = OutboxEmail.objects.filter(tenant=acme).count()
    _seed()  # idempotent: keyed by cause
    assert seed_portal_demo(acme) == 0
    with tenant_context(acme):
        assert Message.objects.for_tenant(acme).filter(cause__startswith="offer:").count() == count
    assert OutboxEmail.objects.filter(tenant=acme).count() == outbox
