"""Portal sessions, links and pages through Django's test client: the API (schema, idempotency, validation),
single-use and expired links, every page scoped to the session's account, CSP and CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.offers.models import Feedback, FeedbackKind, OfferState
from upgrades.portal import tokens
from upgrades.portal.models import PortalSession, PortalSettings
from upgrades.portal.selectors import ref_for

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _open(client: Client, url: str):
    """Follow an email link as a person does: the GET shows a button (nothing used), the button POSTs."""
    shown = client.get(_path(url))
    if shown.status_code != 200:
        return shown
    assert b"Open the portal" in shown.content
    return client.post(_path(url))


def _session(world, **kw) -> Client:
    _, url = tokens.create_portal_session(world.tenant, account=world.account, return_url="https://app.test/", **kw)
    client = Client()
    response = _open(client, url)
    assert response.status_code == 302
    return client


def test_api_opens_a_single_use_session_link_honouring_idempotency(world_a):
    api = world_a.api("write")
    body = {"account": "acct-1", "contact": "buyer@customer.test", "return_url": "https://app.example.com/back"}
    first = api.post("/api/v1/portal-sessions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    assert set(first.json()) == {"url", "expires_at"}
    again = api.post("/api/v1/portal-sessions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.json() == first.json() and PortalSession.objects.count() == 1
    link = PortalSession.objects.get()
    assert link.contact == world_a.contact and link.token_hash not in first.json()["url"]
    assert link.expires_at - link.created_at <= timedelta(hours=1)

    client = Client()
    opened = _open(client, first.json()["url"])
    assert opened.status_code == 302 and opened["Location"] == "/portal/"
    home = client.get("/portal/")
    assert home.status_code == 200 and world_a.account.name.encode() in home.content
    assert "default-src 'none'" in home["Content-Security-Policy"]
    assert str(world_a.account.pk) not in opened["Location"]
    # Used: explains itself, never a second session.
    other = Client()
    used = other.get(_path(first.json()["url"]))
    assert used.status_code == 410 and b"used already" in used.content
    assert other.post(_path(first.json()["url"])).status_code == 410
    assert other.get("/portal/").status_code == 403


def test_api_validates_every_field_and_walls_tenants(world_a, world_b):
    api = world_a.api("write")
    bad = api.post("/api/v1/portal-sessions", {"account": "acct-1", "return_url": "javascript:alert(1)"}, format="json")
    assert bad.status_code == 400 and "return_url" in bad.json()["error"]["details"]
    missing = api.post("/api/v1/portal-sessions", {}, format="json")
    assert missing.status_code == 400 and {"account", "return_url"} <= set(missing.json()["error"]["details"])
    stranger = api.post(
        "/api/v1/portal-sessions",
        {"account": "acct-1", "contact": "nobody@x.test", "return_url": "https://a.test/"},
        format="json",
    )
    assert stranger.status_code == 400 and "contact" in stranger.json()["error"]["details"]
    PortalSettings.objects.create(tenant=world_a.tenant, allowed_origins=["https://app.example.com"])
    off = api.post("/api/v1/portal-sessions", {"account": "acct-1", "return_url": "https://evil.test/"}, format="json")
    assert off.status_code == 400 and "return_url" in off.json()["error"]["details"]
    gone = api.post(
        "/api/v1/portal-sessions", {"account": "nope", "return_url": "https://app.example.com/"}, format="json"
    )
    assert gone.status_code == 404
    read_only = world_a.api("read").post(
        "/api/v1/portal-sessions", {"account": "acct-1", "return_url": "https://app.example.com/"}, format="json"
    )
    assert read_only.status_code == 403
    assert not PortalSession.objects.exists()


def test_expired_and_forged_links_never_open_a_session_and_offer_a_fresh_one(world_a, mailoutbox):
    held = holding(world_a.tenant, world_a.account)
    offer = make_offer(held)
    url = tokens.offer_link(world_a.tenant, offer=offer)
    PortalSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client = Client()
    expired = client.get(_path(url))
    assert expired.status_code == 410 and b"expired" in expired.content and b"fresh link" in expired.content
    assert client.get("/portal/").status_code == 403
    forged = client.get(_path(url)[:-3] + "abc")
    assert forged.status_code == 404 and b"isn't valid" in forged.content
    no_template = client.post(_path(url) + "/fresh")
    assert no_template.status_code == 404 and b"couldn't send" in no_template.content  # still not a dead end


def test_an_expired_offer_link_emails_a_fresh_one_to_the_contact_on_file_once(world_a):
    from messaging.demo import seed_messaging_demo
    from messaging.models import Message

    seed_messaging_demo(world_a.tenant)
    offer = make_offer(holding(world_a.tenant, world_a.account))
    url = tokens.offer_link(world_a.tenant, offer=offer)
    PortalSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client = Client()
    assert client.get(_path(url)).status_code == 410
    fresh = client.post(_path(url) + "/fresh")
    assert fresh.status_code == 200 and b"emailed a fresh link" in fresh.content
    assert client.get("/portal/").status_code == 403  # asking for a link opens nothing here
    client.post(_path(url) + "/fresh")  # a second ask sends nothing more
    message = Message.objects.get(contact=world_a.contact)
    assert (message.category, message.template_key) == ("transactional", "offer-sent")
    new_link = message.context["offer"]["url"]
    assert new_link != url
    opened = _open(Client(), new_link)
    assert opened.status_code == 302 and opened["Location"] == f"/portal/offers/{ref_for('offer', offer)}"


def test_session_ends_after_an_hour(world_a):
    client = _session(world_a)
    PortalSession.objects.update(session_expires_at=timezone.now() - timedelta(seconds=1))
    ended = client.get("/portal/")
    assert ended.status_code == 403 and b"ended" in ended.content


def test_every_page_of_the_offer_flow_and_other_accounts_ids_404(world_a, world_b):
    held = holding(world_a.tenant, world_a.account)
    offer = make_offer(held)
    foreign = make_offer(holding(world_b.tenant, world_b.account))
    client = Client()
    opened = _open(client, tokens.offer_link(world_a.tenant, offer=offer))
    ref = ref_for("offer", offer)
    assert opened["Location"] == f"/portal/offers/{ref}"
    page = client.get(f"/portal/offers/{ref}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "92% of your 100k API calls" in html and 'aria-live="polite"' in html and "checked" not in html
    assert "Decline this offer" in html and "countdown" not in html.lower()
    offer.refresh_from_db()
    assert offer.state == OfferState.VIEWED
    assert client.get(f"/portal/offers/{ref_for('offer', foreign)}").status_code == 404
    assert client.get(f"/portal/offers/{offer.pk}").status_code == 404
    for path in ("/portal/", "/portal/compare", "/portal/compare?interval=year", "/portal/talk", "/portal/feedback"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response["Content-Security-Policy"]
    roi = client.post(f"/portal/offers/{ref}/roi", {}, HTTP_HX_REQUEST="true")
    assert roi.status_code == 200 and b"Value a month" in roi.content
    talk = client.post("/portal/talk", {"offer": ref, "text": "Call me"})
    assert talk.status_code == 200
    assert Feedback.objects.filter(kind=FeedbackKind.TALK_TO_PERSON, offer=offer, text="Call me").exists()
    survey = client.post("/portal/feedback", {"offer": ref, "satisfaction": "9"})
    assert survey.status_code == 400
    survey = client.post("/portal/feedback", {"offer": ref, "satisfaction": "4", "friction": "2"})
    assert survey.status_code == 200 and Feedback.objects.filter(kind=FeedbackKind.SURVEY, satisfaction=4).exists()
    no_reason = client.post(f"/portal/offers/{ref}/decline", {})
    assert no_reason.status_code == 400
    declined = client.post(f"/portal/offers/{ref}/decline", {"reason": "not_now", "text": "Next quarter"})
    assert declined.status_code == 200
    offer.refresh_from_db()
    assert offer.state == OfferState.DECLINED
    assert Feedback.objects.filter(kind=FeedbackKind.DECLINE, offer=offer, source="portal").exists()


def test_forms_need_csrf(world_a):
    held = holding(world_a.tenant, world_a.account)
    offer = make_offer(held)
    _, url = tokens.create_portal_session(world_a.tenant, account=world_a.account, return_url="")
    client = Client(enforce_csrf_checks=True)
    assert client.post(_path(url)).status_code == 403  # the link's own POST needs the page's CSRF token too
    shown = client.get(_path(url))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', shown.content).group(1).decode()
    assert client.post(_path(url), {"csrfmiddlewaretoken": token}).status_code == 302
    refused = client.post(f"/portal/offers/{ref_for('offer', offer)}/decline", {"reason": "not_now"})
    assert refused.status_code == 403
    offer.refresh_from_db()
    assert offer.state == OfferState.SENT


def test_staff_open_the_portal_as_an_account_of_their_tenant_only(world_a, world_b):
    from accounts.models import Role

    csm = world_a.staff_client(Role.CSM)
    opened = csm.post("/portal/staff/open/acct-1")
    assert opened.status_code == 302 and opened["Location"].startswith("/portal/l/")
    landed = _open(csm, opened["Location"])
    assert landed.status_code == 302 and csm.get("/portal/").status_code == 200
    link = PortalSession.objects.get()
    assert (link.kind, link.account_id, link.tenant_id) == ("staff", world_a.account.pk, world_a.tenant.pk)
    assert world_a.staff_client(Role.ANALYST).post("/portal/staff/open/acct-1").status_code == 404
    assert csm.post("/portal/staff/open/nope").status_code == 404
    assert Client().post("/portal/staff/open/acct-1").status_code == 404


def test_another_accounts_offer_and_trial_of_the_same_tenant_404(world_a):
    from accounts.models import CustomerAccount

    neighbour = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="acct-2", name="Neighbour")
    held = holding(world_a.tenant, world_a.account)
    from tests.billing.factories import make_license
    from tests.upgrades.offers.factories_life import Holding

    neighbours = make_license(neighbour, held.catalog.prices["team-month"], seats=3)
    theirs = make_offer(Holding(world_a.tenant, neighbour, held.catalog, neighbours), target="business")
    client = _session(world_a)
    ref = ref_for("offer", theirs)
    for path in (f"/portal/offers/{ref}", f"/portal/offers/{ref}/status", f"/portal/talk?offer={ref}"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/portal/offers/{ref}/decline", {"reason": "not_now"}).status_code == 404
    assert client.post(f"/portal/offers/{ref}/accept", {"option": "business-month"}).status_code == 404
    assert client.get(f"/portal/trials/{ref}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == OfferState.SENT and held.license.account_id == world_a.account.pk


def test_compare_says_what_each_plan_changes_and_a_grandfathered_licence_what_it_keeps(world_a):
    from catalog.models import Price

    held = holding(world_a.tenant, world_a.account)
    client = _session(world_a)
    monthly = client.get("/portal/compare").content.decode()
    assert "Team (your plan)" in monthly and "What changes for you" in monthly and "Annual" in monthly
    annual = client.get("/portal/compare?interval=year", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in annual and "against monthly" in annual and "%" in annual
    assert "You keep your current price" not in monthly
    Price.objects.filter(pk=held.license.price_id).update(state="retired")
    kept = client.get("/portal/compare").content.decode()
    assert "You keep your current price" in kept


def test_the_roi_calculator_recomputes_with_my_numbers_on_the_server(world_a):
    from tests.upgrades.offers.conftest import make_live_settings

    settings = make_live_settings(
        world_a.tenant,
        value_model=[
            {"kind": "revenue_at_risk", "label": "Revenue at risk", "amount": 100000, "probability_percent": 10}
        ],
    )
    held = holding(world_a.tenant, world_a.account)
    offer = make_offer(held, settings=settings)
    client = _session(world_a)
    ref = ref_for("offer", offer)
    first = client.post(f"/portal/offers/{ref}/roi", {}, HTTP_HX_REQUEST="true").content.decode()
    assert "Value a month: $100.00" in first and 'name="roi__revenue_at_risk__amount" value="1000.00"' in first
    mine = client.post(
        f"/portal/offers/{ref}/roi",
        {"roi__revenue_at_risk__amount": "2000.00", "roi__revenue_at_risk__probability_percent": "10"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Value a month: $200.00" in mine and "<html" not in mine
    bad = client.post(f"/portal/offers/{ref}/roi", {"roi__revenue_at_risk__amount": "lots"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200 and 'role="alert"' in bad.content.decode()


def test_a_mail_scanners_prefetch_never_uses_a_link(world_a):
    """GET (and HEAD) of a single-use link show a button only; the POST uses the link, once, before it expires."""
    offer = make_offer(holding(world_a.tenant, world_a.account))
    url = tokens.offer_link(world_a.tenant, offer=offer)
    scanner = Client()
    for _ in range(3):
        shown = scanner.get(_path(url))
        assert shown.status_code == 200 and b"Open the portal" in shown.content
        assert "default-src 'none'" in shown["Content-Security-Policy"] and shown["Cache-Control"] == "no-store"
    assert scanner.head(_path(url)).status_code in (200, 405)
    link = PortalSession.objects.get()
    assert link.used_at is None and scanner.get("/portal/").status_code == 403
    person = Client()
    opened = _open(person, url)
    assert opened.status_code == 302 and opened["Location"] == f"/portal/offers/{ref_for('offer', offer)}"
    link.refresh_from_db()
    assert link.used_at is not None
    again = Client()
    assert again.get(_path(url)).status_code == 410 and again.post(_path(url)).status_code == 410
    assert again.get("/portal/").status_code == 403
    # Expiry still holds for the POST: an unused, expired link opens nothing.
    late = tokens.offer_link(world_a.tenant, offer=offer)
    PortalSession.objects.filter(used_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = Client().post(_path(late))
    assert refused.status_code == 410 and b"expired" in refused.content


def test_money_is_written_in_the_tenants_locale_and_a_contacts_own_locale_wins(world_a):
    from accounts.models import Contact, Tenant
    from upgrades.portal import selectors

    held = holding(world_a.tenant, world_a.account)
    client = _session(world_a)
    english = client.get("/portal/compare").content.decode()
    assert re.search(r"\$\d[\d,]*\.\d\d", english)
    Tenant.objects.filter(pk=world_a.tenant.pk).update(locale="de_DE")
    world_a.tenant.refresh_from_db()
    german = client.get("/portal/compare").content.decode()
    assert re.search(r"\d[\d.]*,\d\d\xa0\$", german) and not re.search(r"\$\d[\d,]*\.\d\d", german)
    assert held.license.price.currency == "USD"
    # A contact's own locale (Contact.locale) is preferred over the tenant's: in the portal of a session for them.
    Contact.objects.filter(pk=world_a.contact.pk).update(locale="fr_FR")
    french = _session(world_a, contact=world_a.contact).get("/portal/compare").content.decode()
    assert re.search(r"\d[\d\u202f\xa0]*,\d\d\xa0\$US", french) and not re.search(r"\d[\d.]*,\d\d\xa0\$[^U]", french)
    contact = Contact(tenant=world_a.tenant, account=world_a.account, email="x@y.test", locale="xx_nope")
    assert selectors.locale_for(world_a.tenant, contact) == "de_DE"  # an unknown stored locale falls back
    assert selectors.locale_for(world_a.tenant, None) == "de_DE"
