"""Emailing a shared proposal's link from the console (issue 17): through messaging's normal path (the seeded
template, one message per contact and day, the shared cap, consent), audited, and walled by role and tenant."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEntry, Contact, Role
from messaging.demo import seed_messaging_demo
from messaging.models import Message, MessageState, MessageTemplate, SuppressedReason
from messaging.services import record_outreach, unsubscribe
from tests.messaging.conftest import set_settings
from upgrades.console.models import Proposal
from upgrades.console.portal_documents import proposal_ref
from upgrades.console.services import proposal_emails
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest
from upgrades.portal import tokens
from upgrades.portal.models import PortalSession

from .helpers import open_signal, publish_policy

pytestmark = pytest.mark.django_db
NOON_UTC = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def share(world, account, *, title: str = "Business for Alpha") -> Proposal:
    csm = world.staff[Role.CSM]
    proposal = services.build_proposal(
        world.tenant,
        account=account,
        actor=csm,
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=1)],
        title=title,
    )
    return services.share_proposal(world.tenant, proposal=proposal, actor=csm)


def ready(world) -> None:
    """The demo's templates live, and no quiet hours (these tests send at any time of day)."""
    seed_messaging_demo(world.tenant)
    set_settings(world.tenant, quiet_hours_start=datetime.time(0, 0), quiet_hours_end=datetime.time(0, 0))


@pytest.fixture
def walls(workspace_a, workspace_b):
    """Tenant A's shared proposal for acct-1 (one contact), and tenant B with the same shape."""
    a, b = workspace_a.world, workspace_b.world
    for world in (a, b):
        publish_policy(world.tenant)
        open_signal(world.account)
        ready(world)
    return a, b, share(a, a.account), share(b, b.account)


def _email(world, proposal, contact, client=None, **extra):
    client = client or world.staff_client(Role.CSM)
    return client.post(f"/console/proposals/{proposal.pk}/email/", {"contact": contact.pk, **extra})


def test_a_csm_emails_the_link_once_and_it_opens_the_proposal(walls, django_capture_on_commit_callbacks):
    a, _, proposal, _ = walls
    csm = a.staff_client(Role.CSM)
    page = csm.get(f"/console/proposals/{proposal.pk}/")
    assert b"Email it to" in page.content and b'type="checkbox"' not in page.content
    assert page.content.count(b" checked") == 1  # exactly one contact: chosen for the CSM, nothing else ticked

    with django_capture_on_commit_callbacks(execute=True):
        sent = _email(a, proposal, a.contact, client=csm)
    assert sent.status_code == 302
    message = Message.objects.get(tenant=a.tenant)
    assert (message.template_key, message.contact, message.category) == ("proposal-link", a.contact, "upgrade")
    assert message.state == MessageState.SENT and message.counted_at is not None  # it took a slot of the cap
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [a.contact.email]
    assert mail.outbox[0].subject == "A proposal for Tenant A Customer: Business for Alpha"
    text = mail.outbox[0].body
    assert "Your account manager put together a proposal" in text and a.staff[Role.CSM].email in text
    entry = AuditEntry.objects.get(tenant=a.tenant, action="proposal.link_emailed")
    assert entry.after["contact"] == a.contact.email and entry.after["state"] == "queued"
    followed = csm.get(sent["Location"])
    assert f"Emailed to Buyer ({a.contact.email})" in followed.content.decode()

    # The link in the email (behind the click redirect) opens the proposal in the portal, for that contact.
    link = message.context["proposal"]["url"]
    html = mail.outbox[0].alternatives[0][0]
    clicked = Client().get(_path(re.search(r'href="([^"]+/m/c/[^"]+)"', html).group(1)))
    assert clicked.status_code == 302 and clicked["Location"] == link
    customer = Client()
    opened = customer.post(_path(link))
    assert opened.status_code == 302 and opened["Location"] == f"/portal/proposals/{proposal_ref(proposal)}"
    assert b"Business for Alpha" in customer.get(opened["Location"]).content
    assert PortalSession.objects.get(tenant=a.tenant).contact == a.contact


def test_a_double_submit_sends_one_email_and_makes_one_link(walls, django_capture_on_commit_callbacks):
    a, _, proposal, _ = walls
    csm = a.staff_client(Role.CSM)
    with django_capture_on_commit_callbacks(execute=True):
        first = _email(a, proposal, a.contact, client=csm)
        second = _email(a, proposal, a.contact, client=csm)
    assert first.status_code == second.status_code == 302
    assert Message.objects.filter(tenant=a.tenant).count() == 1
    assert len(mail.outbox) == 1
    assert PortalSession.objects.filter(tenant=a.tenant).count() == 1  # the replay made no second link
    assert AuditEntry.objects.filter(tenant=a.tenant, action="proposal.link_emailed").count() == 1
    body = csm.get(second["Location"]).content.decode()
    assert "Already emailed to Buyer today: nothing more was sent." in body


def test_the_cap_stops_it_and_the_csm_reads_why(walls, django_capture_on_commit_callbacks):
    a, _, proposal, _ = walls
    set_settings(a.tenant, cap_count=1)
    outreach = record_outreach(a.tenant, contact=a.contact, cause="console:call", actor=a.staff[Role.CSM])
    assert outreach.state == MessageState.SENT  # a CSM's call took the contact's only slot
    csm = a.staff_client(Role.CSM)
    with django_capture_on_commit_callbacks(execute=True):
        stopped = _email(a, proposal, a.contact, client=csm)
    assert stopped.status_code == 302
    message = Message.objects.get(tenant=a.tenant, template_key="proposal-link")
    assert (message.state, message.suppressed_reason) == (MessageState.SUPPRESSED, SuppressedReason.CONTACT_CAP)
    assert message.counted_at is None and mail.outbox == []
    body = csm.get(stopped["Location"]).content.decode()
    assert "Not sent to Buyer: they have had 1 upgrade message in the last 7 days" in body
    assert AuditEntry.objects.filter(tenant=a.tenant, action="proposal.link_email_stopped").count() == 1
    assert not AuditEntry.objects.filter(tenant=a.tenant, action="proposal.link_emailed").exists()


def test_an_unsubscribed_contact_gets_nothing_and_the_csm_reads_why(walls, django_capture_on_commit_callbacks):
    a, _, proposal, _ = walls
    unsubscribe(a.tenant, contact=a.contact, source="test")
    csm = a.staff_client(Role.CSM)
    with django_capture_on_commit_callbacks(execute=True):
        stopped = _email(a, proposal, a.contact, client=csm)
    message = Message.objects.get(tenant=a.tenant)
    assert message.suppressed_reason == SuppressedReason.UNSUBSCRIBED and mail.outbox == []
    assert "they unsubscribed from upgrade emails" in csm.get(stopped["Location"]).content.decode()


def test_roles_and_tenant_walls_answer_and_nothing_is_sent(walls, workspace_a, django_capture_on_commit_callbacks):
    a, b, proposal, foreign = walls
    other_account = workspace_a.accounts["acct-2"]
    neighbour = Contact.objects.create(tenant=a.tenant, account=other_account, email="n@alpha-trial.test")
    url = f"/console/proposals/{proposal.pk}/email/"
    with django_capture_on_commit_callbacks(execute=True):
        assert a.staff_client(Role.CSM).get(url).status_code == 405  # sending is never a GET
        assert _email(a, proposal, a.contact, client=a.staff_client(Role.ANALYST)).status_code == 403
        assert _email(a, proposal, a.contact, client=a.staff_client(Role.PRODUCT_MANAGER)).status_code == 403
        assert _email(a, proposal, a.contact, client=b.staff_client(Role.CSM)).status_code == 404  # B: A's proposal
        assert _email(a, foreign, a.contact).status_code == 404  # A: B's proposal
        assert _email(a, proposal, b.contact).status_code == 404  # A's proposal, B's contact
        assert _email(a, proposal, neighbour).status_code == 404  # a contact of another of A's accounts
        assert a.staff_client(Role.CSM).post(url, {}).status_code == 400  # nobody chosen
        assert Client().post(url, {"contact": a.contact.pk}).status_code == 302  # to the sign-in
    assert not Message.objects.exists() and mail.outbox == [] and not PortalSession.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="proposal.link_email").exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert _email(a, proposal, a.contact, client=a.staff_client(Role.OWNER)).status_code == 302
    assert len(mail.outbox) == 1


def test_several_contacts_are_listed_with_none_chosen(walls):
    a, _, proposal, _ = walls
    Contact.objects.create(tenant=a.tenant, account=a.account, email="cfo@customer.test", name="Casey Fin")
    page = a.staff_client(Role.CSM).get(f"/console/proposals/{proposal.pk}/").content.decode()
    assert "Casey Fin · cfo@customer.test" in page and "buyer@customer.test" in page
    assert " checked" not in page and 'type="checkbox"' not in page


def test_without_a_live_template_it_refuses_and_makes_nothing(walls):
    a, _, proposal, _ = walls
    MessageTemplate.objects.filter(tenant=a.tenant, key="proposal-link").update(state="retired")
    refused = _email(a, proposal, a.contact)
    assert refused.status_code == 409
    assert "No email template for proposals is live" in refused.content.decode()
    assert not Message.objects.exists() and not PortalSession.objects.exists()


def test_only_a_shared_proposal_can_be_emailed(walls):
    a, _, _, _ = walls
    draft = services.build_proposal(a.tenant, account=a.account, actor=a.staff[Role.CSM],
                                    options=[OptionRequest(tier="business", interval="year", seats=3)])  # fmt: skip
    assert _email(a, draft, a.contact).status_code == 409
    assert b"Email it to" not in a.staff_client(Role.CSM).get(f"/console/proposals/{draft.pk}/").content
    assert not Message.objects.exists()


def test_in_quiet_hours_it_waits_and_says_until_when(walls):
    a, _, proposal, _ = walls
    set_settings(a.tenant, quiet_hours_start=datetime.time(20, 0), quiet_hours_end=datetime.time(8, 0))
    late = datetime.datetime(2026, 11, 2, 22, 0, tzinfo=datetime.UTC)
    sent = proposal_emails.email_proposal_link(a.tenant, proposal=proposal, contact=a.contact,
                                               actor=a.staff[Role.CSM], now=late)  # fmt: skip
    assert sent.message.state == MessageState.HELD and sent.admitted and not sent.repeated
    assert "it is their quiet hours, so it goes out at 3 Nov 2026, 08:00" in sent.text


def test_the_next_day_it_may_go_again_under_the_cap(walls):
    a, _, proposal, _ = walls
    actor = a.staff[Role.CSM]
    first = proposal_emails.email_proposal_link(a.tenant, proposal=proposal, contact=a.contact, actor=actor,
                                                now=NOON_UTC)  # fmt: skip
    again = proposal_emails.email_proposal_link(a.tenant, proposal=proposal, contact=a.contact, actor=actor,
                                                now=NOON_UTC + datetime.timedelta(hours=1))  # fmt: skip
    later = proposal_emails.email_proposal_link(a.tenant, proposal=proposal, contact=a.contact, actor=actor,
                                                now=NOON_UTC + datetime.timedelta(days=1))  # fmt: skip
    assert again.repeated and again.message.pk == first.message.pk
    assert not later.repeated and later.message.pk != first.message.pk
    assert first.message.cause == f"proposal:{proposal.pk}:emailed:2026-11-02"
    assert first.message.context["proposal"]["expires_on"] == "9 Nov 2026"


def test_the_email_promises_the_portal_links_lifetime():
    assert proposal_emails.LINK_TTL == tokens.DOCUMENT_LINK_TTL
