"""Links in an email work without a sign-in: one-click unsubscribe (RFC 8058), preferences, opens, clicks.

Each page trusts only its signed token; another tenant's contact or message is never reachable by
editing a token, and the click redirect only goes where the message's own links went."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from messaging import tokens
from messaging.models import ContactPreference, Message, MessageEvent, MessageState
from messaging.selectors import message_funnel
from messaging.services.context import unsubscribe_url
from messaging.services.delivery import click_url, open_url
from tests.messaging.conftest import live_template

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings, world_a):
    settings.SITE_URL = "http://testserver"
    live_template(world_a.tenant)


def _path(url: str) -> str:
    return url.replace("http://testserver", "")


def test_one_click_post_unsubscribes_without_login_or_csrf(world_a, send):
    client = Client(enforce_csrf_checks=True)
    url = _path(unsubscribe_url(world_a.tenant, world_a.contact.pk))
    answer = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200 and "You're unsubscribed" in answer.content.decode()
    pref = ContactPreference.objects.get(contact=world_a.contact)
    assert pref.unsubscribed_at is not None
    assert send(world_a, cause="offer:9").suppressed_reason == "unsubscribed"  # honoured at once


def test_get_on_the_unsubscribe_url_shows_preferences_and_changes_nothing(world_a):
    answer = Client().get(_path(unsubscribe_url(world_a.tenant, world_a.contact.pk)))
    page = answer.content.decode()
    assert answer.status_code == 200 and "Your email preferences" in page and world_a.contact.email in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert not ContactPreference.objects.filter(contact=world_a.contact, unsubscribed_at__isnull=False).exists()


def test_the_preferences_form_needs_its_csrf_token_and_saves_at_once(world_a):
    client = Client(enforce_csrf_checks=True)
    url = _path(unsubscribe_url(world_a.tenant, world_a.contact.pk)).replace("/m/u/", "/m/preferences/")
    assert client.post(url, {"in_app": "on", "subscribed": "on"}).status_code == 403
    page = client.get(url).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    saved = client.post(url, {"csrfmiddlewaretoken": csrf, "in_app": "on", "subscribed": "on",
                              "time_zone": "Asia/Tokyo"})  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.content.decode()
    pref = ContactPreference.objects.get(contact=world_a.contact)
    assert (pref.upgrade_email, pref.in_app, pref.unsubscribed_at, pref.time_zone) == (False, True, None, "Asia/Tokyo")


def test_a_bad_or_forged_token_finds_nothing(two_tenants):
    a, b = two_tenants
    good = tokens.make(tokens.UNSUBSCRIBE, tenant_id=a.tenant.pk, object_id=a.contact.pk)
    # The same payload signed for another purpose, a truncated token, and one naming B's contact with A's tenant.
    wrong_purpose = tokens.make(tokens.CLICK, tenant_id=a.tenant.pk, object_id=a.contact.pk)
    crossed = tokens.make(tokens.UNSUBSCRIBE, tenant_id=a.tenant.pk, object_id=b.contact.pk)
    client = Client()
    for token in (good[:-3], wrong_purpose, crossed):
        answer = client.post(f"/m/u/{token}")
        assert answer.status_code == 404
    assert not ContactPreference.objects.filter(unsubscribed_at__isnull=False).exists()


def test_opens_and_clicks_are_recorded_and_the_redirect_goes_only_to_recorded_links(world_a, send):
    message = send(world_a)
    message.refresh_from_db()
    assert message.state == MessageState.SENT and message.links == ["https://example.com/portal/offer/1"]
    client = Client()
    pixel = client.get(_path(open_url(message)))
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif"
    click = client.get(_path(click_url(message, 0)))
    assert click.status_code == 302 and click["Location"] == "https://example.com/portal/offer/1"
    assert client.get(_path(click_url(message, 1))).status_code == 404  # no such link on this message
    assert client.get(_path(click_url(message, 0)) + "?next=https://evil.test").status_code == 302
    assert client.get("/m/c/https%3A%2F%2Fevil.test").status_code == 404
    kinds = sorted(MessageEvent.objects.filter(message=message).values_list("kind", flat=True))
    assert kinds == ["clicked", "clicked", "opened", "sent"]
    funnel = message_funnel(world_a.tenant, cause_prefix="offer:")
    assert (funnel["sent"], funnel["opened"], funnel["clicked"]) == (1, 1, 1)


def test_the_email_carries_tracked_links_and_the_unsubscribe_headers(world_a, send):
    message = send(world_a)
    sent = mail.outbox[0]
    html = sent.alternatives[0][0]
    assert "https://example.com/portal/offer/1" not in html and "/m/c/" in html and "/m/o/" in html
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The header's URL is a signed token for this contact (its timestamp is the second it was sent).
    header = sent.extra_headers["List-Unsubscribe"]
    assert header.startswith("<") and header.endswith(">")
    assert _path(header[1:-1]).startswith("/m/u/")
    payload = tokens.read(tokens.UNSUBSCRIBE, _path(header[1:-1]).removeprefix("/m/u/").strip("/"))
    assert (payload.tenant_id, payload.object_id) == (world_a.tenant.pk, world_a.contact.pk)
    assert "See the offer (https://example.com/portal/offer/1)" in sent.body
    assert Message.objects.get(pk=message.pk).to_email == world_a.contact.email


def test_another_tenants_message_is_not_reachable_through_a_click_token(two_tenants, send):
    a, b = two_tenants
    live_template(b.tenant)
    theirs = send(b)
    forged = tokens.make(tokens.CLICK, tenant_id=a.tenant.pk, object_id=theirs.pk, index=0)
    assert Client().get(f"/m/c/{forged}").status_code == 404
    assert not MessageEvent.objects.filter(message=theirs, kind="clicked").exists()
