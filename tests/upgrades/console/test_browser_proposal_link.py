"""Chromium on the console's proposal page as the CSM: "Make a link for the customer" shows the link, and the
link opened in a fresh browser (no sign-in) shows the proposal in the portal; "Send the email", submitted twice at once,
sends one email through messaging, received by a real SMTP server, whose link opens the proposal too."""

from __future__ import annotations

import datetime
import re

import pytest

from accounts.models import Role
from messaging.demo import seed_messaging_demo
from messaging.models import Message, MessageState
from tests.conftest import sign_in_with_form, wait_for
from tests.messaging.conftest import set_settings
from tests.messaging.test_delivery_smtp import smtp_inbox  # noqa: F401 - the fixture
from tests.upgrades.portal.browser_helpers import open_email_link, path_of
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest
from upgrades.portal.models import PortalSession

from .helpers import open_signal, publish_policy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _in_fresh_browser(page, url: str, title: str) -> None:
    """A new context: no cookies, no staff session, as the customer's own browser."""
    context = page.context.browser.new_context()
    try:
        customer = context.new_page()
        customer.base_url = page.base_url
        open_email_link(customer, url)
        customer.wait_for_url("**/portal/proposals/*")
        assert customer.get_by_role("heading", name=title).count() >= 1
        assert "Every invoice for" in customer.inner_text("body")
    finally:
        context.close()


def test_csm_makes_a_link_and_emails_it_from_the_proposal_page(browser_page, workspace_a, smtp_inbox):  # noqa: F811
    world = workspace_a.world
    csm = world.staff[Role.CSM]
    publish_policy(world.tenant)
    open_signal(world.account)
    seed_messaging_demo(world.tenant)
    set_settings(world.tenant, quiet_hours_start=datetime.time(0, 0), quiet_hours_end=datetime.time(0, 0))
    proposal = services.build_proposal(
        world.tenant,
        account=world.account,
        actor=csm,
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=1)],
        title="Business for Alpha",
    )
    services.share_proposal(world.tenant, proposal=proposal, actor=csm)

    page = browser_page
    sign_in_with_form(page, csm.email, at="/console/")
    page.goto(page.base_url + f"/console/proposals/{proposal.pk}/")
    with page.expect_navigation():
        page.get_by_role("button", name="Make a link for the customer").click()
    link = page.input_value("[data-testid=customer-link]")
    assert "/portal/l/" in link
    _in_fresh_browser(page, link, "Business for Alpha")

    # The one contact is chosen already. Two submissions at once (a double click that reaches the server twice,
    # or two tabs) send one email: both POSTs race on the live server's threads.
    radio = page.get_by_role("radio", name=re.compile("Buyer"))
    assert radio.is_checked()
    statuses = page.evaluate(
        """async () => {
            const form = document.querySelector("[data-testid=email-link] form");
            const post = () => fetch(form.action, {method: "POST", body: new FormData(form), redirect: "manual"});
            return (await Promise.all([post(), post()])).map(r => r.type);
        }"""
    )
    assert statuses == ["opaqueredirect", "opaqueredirect"]  # both answered with the redirect back
    wait_for(lambda: len(smtp_inbox.messages) >= 1)
    message = Message.objects.get(tenant=world.tenant, template_key="proposal-link")
    assert message.state == MessageState.SENT and message.to_email == world.contact.email
    page.wait_for_timeout(500)  # a second email, if any, would be on its way by now
    assert Message.objects.filter(tenant=world.tenant).count() == 1 and len(smtp_inbox.messages) == 1
    assert PortalSession.objects.filter(tenant=world.tenant).count() == 2  # the made link and the emailed one
    page.reload()
    assert re.search(r"Emailed to Buyer|Already emailed to Buyer today", page.inner_text(".messagelist"))
    received = smtp_inbox.messages[0]
    assert received["To"] == world.contact.email
    assert received["Subject"] == "A proposal for Tenant A Customer: Business for Alpha"
    plain = received.get_body(preferencelist=("plain",)).get_content()
    emailed = message.context["proposal"]["url"]
    assert f"Open the proposal ({emailed})" in plain and "works until" in plain
    assert "/m/c/" in received.get_body(preferencelist=("html",)).get_content()  # the HTML link is tracked

    # Pressed again: nothing more is sent, and the CSM is told so.
    with page.expect_navigation():
        page.get_by_role("button", name="Send the email").click()
    page.wait_for_selector("text=Already emailed to Buyer today")
    assert Message.objects.filter(tenant=world.tenant).count() == 1 and len(smtp_inbox.messages) == 1

    # The emailed link opens the proposal for the customer too (its own single-use link).
    assert path_of(emailed) != path_of(link)
    _in_fresh_browser(page, emailed, "Business for Alpha")
