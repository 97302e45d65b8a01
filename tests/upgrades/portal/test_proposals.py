"""A CSM's proposal in the customer's portal (issue 17): listed on My plan, a page with every invoice of each
option's price path, decline with a reason (as prominent as accept), another account's or tenant's proposal
404, CSRF enforced, CSP unchanged; and an accept through billing, the Stripe stand-in and a real worker."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry, Role
from catalog.models import DiscountPolicy, GovernanceState
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.console.helpers import open_signal, publish_policy
from upgrades.console.models import Proposal, ProposalState
from upgrades.console.portal_documents import proposal_ref
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest
from upgrades.portal import tokens

stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _session(tenant, account, *, enforce_csrf: bool = False) -> Client:
    _, url = tokens.create_portal_session(tenant, account=account, return_url="https://app.test/")
    client = Client(enforce_csrf_checks=enforce_csrf)
    assert client.get(_path(url)).status_code == 200
    if enforce_csrf:
        token = client.cookies["csrftoken"].value
        assert client.post(_path(url), HTTP_X_CSRFTOKEN=token).status_code == 302
    else:
        assert client.post(_path(url)).status_code == 302
    return client


def _shared(world, account, *, term_years: int = 2) -> Proposal:
    csm = world.staff[Role.CSM]
    proposal = services.build_proposal(
        world.tenant,
        account=account,
        actor=csm,
        options=[
            OptionRequest(tier="business", interval="year", seats=3, term_years=term_years),
            OptionRequest(tier="business", interval="year", seats=3, term_years=1),
        ],
        title="Business for Alpha",
        intro="As we discussed on the call.",
    )
    return services.share_proposal(world.tenant, proposal=proposal, actor=csm)


@pytest.fixture
def shared(workspace_a, workspace_b):
    world = workspace_a.world
    publish_policy(world.tenant)
    open_signal(world.account, sentence="API calls at 92 % of the limit for 9 days")
    return _shared(world, world.account)


@pytest.mark.django_db
def test_my_plan_lists_the_proposal_and_its_page_shows_every_invoice(workspace_a, shared):
    world = workspace_a.world
    client = _session(world.tenant, world.account)
    home = client.get("/portal/")
    assert home.status_code == 200
    assert b"Proposals from your account manager" in home.content
    ref = proposal_ref(shared)
    assert f"/portal/proposals/{ref}".encode() in home.content
    assert re.fullmatch(r"[0-9a-f]{24}", ref) and f'/portal/proposals/{shared.pk}"'.encode() not in home.content

    page = client.get(f"/portal/proposals/{ref}")
    assert page.status_code == 200
    assert "default-src 'none'" in page["Content-Security-Policy"]
    html = page.content.decode()
    assert "Business for Alpha" in html and "As we discussed on the call." in html
    assert "API calls at 92 % of the limit for 9 days" in html
    for option in shared.options.all():
        assert f'value="{option.key}"' in html
        for row in option.price_path:
            amount = f"{row['amount'] / 100:,.2f}"
            assert amount in html, (amount, row)
    two_year = shared.options.get(term_years=2)
    assert len(two_year.price_path) == 2  # today and the second year's renewal: both shown
    # Decline is a primary button, as prominent as Accept; nothing pre-selected.
    assert html.count('class="primary"') == 2 and "Decline this proposal</button>" in html
    assert "checked" not in html


@pytest.mark.django_db
def test_decline_needs_a_reason_and_records_it(workspace_a, shared):
    world = workspace_a.world
    client = _session(world.tenant, world.account)
    ref = proposal_ref(shared)
    assert client.get(f"/portal/proposals/{ref}/decline").status_code == 200
    missing = client.post(f"/portal/proposals/{ref}/decline", {"reason": "", "text": "x"})
    assert missing.status_code == 400 and b"Choose a reason" in missing.content
    shared.refresh_from_db()
    assert shared.state == ProposalState.SHARED
    done = client.post(f"/portal/proposals/{ref}/decline", {"reason": "too_expensive", "text": "Budget is set."})
    assert done.status_code == 200 and b"You declined the proposal" in done.content
    shared.refresh_from_db()
    assert shared.state == ProposalState.DECLINED
    assert shared.decline_reason == "Too expensive: Budget is set."
    assert AuditEntry.objects.filter(action="proposal.declined", actor_label="customer (portal)").count() == 1
    # Decided: the page says so and offers no buttons; accepting now refuses.
    page = client.get(f"/portal/proposals/{ref}")
    assert b"Declined" in page.content and b"Accept the chosen option" not in page.content
    option = shared.options.first()
    again = client.post(f"/portal/proposals/{ref}/accept", {"option": option.key})
    assert again.status_code == 409
    shared.refresh_from_db()
    assert shared.state == ProposalState.DECLINED


@pytest.mark.django_db
def test_another_accounts_or_tenants_proposal_is_404_and_unlisted(workspace_a, workspace_b, shared):
    world = workspace_a.world
    ref = proposal_ref(shared)
    other = _session(world.tenant, workspace_a.accounts["acct-2"])
    assert b"Business for Alpha" not in other.get("/portal/").content
    for url in (f"/portal/proposals/{ref}", f"/portal/proposals/{ref}/status", f"/portal/proposals/{ref}/decline"):
        assert other.get(url).status_code == 404, url
    option = shared.options.first()
    assert other.post(f"/portal/proposals/{ref}/accept", {"option": option.key}).status_code == 404
    assert other.post(f"/portal/proposals/{ref}/decline", {"reason": "not_now"}).status_code == 404
    assert other.post(f"/portal/proposals/{ref}/retry").status_code == 404
    assert other.get(f"/portal/card?proposal={ref}").status_code == 404
    # Tenant B's own account (same external id) never sees tenant A's proposal.
    bee = _session(workspace_b.world.tenant, workspace_b.world.account)
    assert bee.get(f"/portal/proposals/{ref}").status_code == 404
    assert b"Proposals from your account manager" not in bee.get("/portal/").content
    shared.refresh_from_db()
    assert shared.state == ProposalState.SHARED
    # A draft (never shared) is not the customer's to see.
    draft = services.build_proposal(
        world.tenant,
        account=world.account,
        actor=world.staff[Role.CSM],
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=1)],
    )
    mine = _session(world.tenant, world.account)
    assert mine.get(f"/portal/proposals/{proposal_ref(draft)}").status_code == 404


@pytest.mark.django_db
def test_a_csm_makes_a_single_use_link_that_opens_the_proposal_in_the_portal(workspace_a, workspace_b, shared):
    world = workspace_a.world
    url = f"/console/proposals/{shared.pk}/link/"
    csm = world.staff_client(Role.CSM)
    assert csm.get(url).status_code == 405  # making a link is an action: never on a GET
    made = csm.post(url)
    assert made.status_code == 200
    link = made.context["customer_link"]
    assert link.startswith("http") and "/portal/l/" in link and proposal_ref(shared) not in link  # opaque
    assert AuditEntry.objects.filter(tenant=world.tenant, action="proposal.link_made").count() == 1

    customer = Client()
    assert b"Open the portal" in customer.get(_path(link)).content  # a mail scanner's GET uses nothing
    opened = customer.post(_path(link))
    assert opened.status_code == 302 and opened["Location"] == f"/portal/proposals/{proposal_ref(shared)}"
    assert b"Business for Alpha" in customer.get(opened["Location"]).content
    assert Client().post(_path(link)).status_code != 302  # single use

    # Roles and walls: an analyst may not make links, another tenant's staff gets a 404, a draft has none.
    assert world.staff_client(Role.ANALYST).post(url).status_code == 403
    assert workspace_b.world.staff_client(Role.CSM).post(url).status_code == 404
    draft = services.build_proposal(world.tenant, account=world.account, actor=world.staff[Role.CSM],
                                    options=[OptionRequest(tier="business", interval="year", seats=3)])  # fmt: skip
    assert csm.post(f"/console/proposals/{draft.pk}/link/").status_code == 409


@pytest.mark.django_db
def test_posts_need_the_csrf_token(workspace_a, shared):
    world = workspace_a.world
    client = _session(world.tenant, world.account, enforce_csrf=True)
    ref = proposal_ref(shared)
    refused = client.post(f"/portal/proposals/{ref}/decline", {"reason": "not_now"})
    assert refused.status_code == 403
    shared.refresh_from_db()
    assert shared.state == ProposalState.SHARED


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_accept_in_the_portal_hands_to_billing_and_follows_to_settled(
    world_a, standin, live_server, celery_worker_process
):
    billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    DiscountPolicy.objects.create(
        tenant=world_a.tenant,
        key="standard",
        name="Standard",
        term_rules=[{"years": 2, "percent": "10"}],
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
    )
    csm = world_a.staff[Role.CSM]
    proposal = services.build_proposal(
        world_a.tenant,
        account=world_a.account,
        actor=csm,
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=2)],
    )
    services.share_proposal(world_a.tenant, proposal=proposal, actor=csm)
    option = proposal.options.get()
    client = _session(world_a.tenant, world_a.account)
    ref = proposal_ref(proposal)

    assert client.post(f"/portal/proposals/{ref}/accept", {"option": ""}).status_code == 400
    accepted = client.post(f"/portal/proposals/{ref}/accept", {"option": option.key})
    assert accepted.status_code == 302 and accepted["Location"] == f"/portal/proposals/{ref}/status"
    proposal.refresh_from_db()
    assert proposal.state in (ProposalState.ACCEPTED, ProposalState.FULFILLED)
    assert proposal.plan_change is not None and proposal.plan_change.reference == f"proposal:{proposal.pk}"

    done = wait_for(lambda: Proposal.objects.filter(pk=proposal.pk, state=ProposalState.FULFILLED).first(), timeout=40)
    assert done is not None
    status = client.get(f"/portal/proposals/{ref}/status", HTTP_HX_REQUEST="true")
    assert status.status_code == 200 and b"Done: your plan is now" in status.content
    charged = f"{option.price_path[0]['amount'] / 100:,.2f}"
    assert charged.encode() in status.content
    assert b"hx-get" not in status.content  # settled: the page stops polling


@pytest.mark.django_db
def test_a_renewal_packet_shows_the_years_outcomes(workspace_a):
    world = workspace_a.world
    publish_policy(world.tenant)
    csm = world.staff[Role.CSM]
    proposal = services.build_proposal(
        world.tenant,
        account=world.account,
        actor=csm,
        kind="renewal",
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=2)],
        outcomes={"adoption": "2 of 3 metered features in use this year."},
    )
    services.share_proposal(world.tenant, proposal=proposal, actor=csm)
    page = _session(world.tenant, world.account).get(f"/portal/proposals/{proposal_ref(proposal)}")
    assert page.status_code == 200
    assert b"Your year with us" in page.content and b"2 of 3 metered features in use this year." in page.content


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_declined_card_says_so_and_the_plan_stays(world_a, standin, live_server, celery_worker_process):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    standin.set_card(billed.license.stripe_customer_id, "4000000000000002")  # declined
    csm = world_a.staff[Role.CSM]
    proposal = services.build_proposal(
        world_a.tenant,
        account=world_a.account,
        actor=csm,
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=1)],
    )
    services.share_proposal(world_a.tenant, proposal=proposal, actor=csm)
    client = _session(world_a.tenant, world_a.account)
    ref = proposal_ref(proposal)
    accepted = client.post(f"/portal/proposals/{ref}/accept", {"option": proposal.options.get().key})
    assert accepted.status_code == 302

    def failed():
        page = client.get(f"/portal/proposals/{ref}/status", HTTP_HX_REQUEST="true")
        return page if b"The payment didn't go through" in page.content else None

    page = wait_for(failed, timeout=40)
    assert page is not None and b"hx-get" not in page.content
    assert billed.refresh().tier.key == "team"
    proposal.refresh_from_db()
    assert proposal.state == ProposalState.ACCEPTED
    assert b"Try again with the same card" in page.content and f"/portal/proposals/{ref}/retry".encode() in page.content

    # The customer fixed their card with their bank: the same invoice is paid, once, and the proposal settles.
    standin.set_card(billed.license.stripe_customer_id, "4242424242424242")
    assert client.post(f"/portal/proposals/{ref}/retry").status_code == 302
    done = wait_for(lambda: Proposal.objects.filter(pk=proposal.pk, state=ProposalState.FULFILLED).first(), timeout=40)
    assert done is not None and billed.refresh().tier.key == "business"
    assert AuditEntry.objects.filter(tenant=world_a.tenant, action="proposal.payment_retried").count() == 1
