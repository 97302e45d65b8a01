"""The console end to end in Django: proposals priced from policy (hand-worked), approval routing beyond
policy, the PDF's text, worklist ordering, every page per role and with another tenant's ids."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.errors import PermissionDenied
from accounts.models import AuditEntry, Role
from billing.proration import add_interval
from upgrades.console.models import ConsoleTask, Playbook, Proposal, ProposalState, TaskKind
from upgrades.console.services import proposals as services
from upgrades.console.services import tasks as task_services
from upgrades.console.services.options import OptionRequest
from upgrades.console.worklist import WorklistFilters, worklist
from upgrades.offers.models import Feedback, FeedbackKind

from .helpers import open_signal, publish_policy, score

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(workspace_a, workspace_b):
    world = workspace_a.world
    csm = world.staff[Role.CSM]
    for key in ("acct-1", "acct-2", "acct-3"):
        acct = workspace_a.accounts[key]
        acct.assigned_csm = csm
        acct.save(update_fields=["assigned_csm"])
    publish_policy(world.tenant)
    return workspace_a


def build(ws, *, percent=None, term_years=2, kind="upgrade"):
    world = ws.world
    return services.build_proposal(
        world.tenant,
        account=ws.accounts["acct-1"],
        actor=world.staff[Role.CSM],
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=term_years)],
        discount_percent=percent,
        kind=kind,
    )


def test_proposal_within_policy_prices_every_invoice_of_the_term(console):
    # Business 790.00/seat/year x 3 = 2,370.00; the policy's 2-year rule: 10 % (237.00) -> 2,133.00 a year.
    proposal = build(console)
    option = proposal.options.get()
    assert option.option["list_amount"] == 237_000 and option.option["amount"] == 213_300
    assert option.option["discount"]["within_policy"] is True
    assert "10 % for a 2-year commitment" in option.option["discount"]["explanation"]
    rows = option.price_path
    assert [r["amount"] for r in rows] == [option.quote["amount_due_now"], 213_300]
    assert rows[1]["date"] == option.quote["next_renewal_at"]
    assert option.total_amount == sum(r["amount"] for r in rows)
    assert not proposal.approval_needed
    services.submit_proposal(console.world.tenant, proposal=proposal, actor=console.world.staff[Role.CSM])
    assert proposal.state == ProposalState.READY


def test_discount_beyond_policy_waits_for_the_approver_role_and_is_recorded(console):
    world = console.world
    proposal = build(console, percent=Decimal("15"))
    assert proposal.approval_needed and proposal.approver_role == Role.PRODUCT_MANAGER
    assert proposal.options.get().option["amount"] == 237_000 - 35_550
    services.submit_proposal(world.tenant, proposal=proposal, actor=world.staff[Role.CSM])
    assert proposal.state == ProposalState.AWAITING_APPROVAL
    with pytest.raises(Exception):  # noqa: B017 - awaiting approval: sharing is refused
        services.share_proposal(world.tenant, proposal=proposal, actor=world.staff[Role.CSM])

    def membership(role):
        return (
            world.staff[role].memberships.get(tenant=world.tenant)
            if hasattr(world.staff[role], "memberships")
            else None
        )

    from accounts.models import Membership

    for role in (Role.CSM, Role.ANALYST):
        with pytest.raises(PermissionDenied):
            services.approve_proposal(
                world.tenant,
                proposal=proposal,
                membership=Membership.objects.get(tenant=world.tenant, user=world.staff[role]),
            )
    services.approve_proposal(
        world.tenant,
        proposal=proposal,
        membership=Membership.objects.get(tenant=world.tenant, user=world.staff[Role.PRODUCT_MANAGER]),
        note="Strategic logo",
    )
    proposal.refresh_from_db()
    assert proposal.state == ProposalState.READY and proposal.approved_by == world.staff[Role.PRODUCT_MANAGER]
    assert AuditEntry.objects.filter(tenant=world.tenant, action="proposal.ready", object_id=str(proposal.pk)).exists()
    services.share_proposal(world.tenant, proposal=proposal, actor=world.staff[Role.CSM])
    assert proposal.state == ProposalState.SHARED


def test_renewal_packet_pdf_has_every_number_the_page_shows(console):
    from pypdf import PdfReader

    from upgrades.console.document import proposal_pdf

    proposal = build(console, kind="renewal")
    option = proposal.options.get()
    # Renewal: the 2-year rule (10 %) plus the 5 % loyalty for a multi-year renewal = 15 % (355.50 off).
    assert option.option["amount"] == 237_000 - 35_550
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(proposal_pdf(console.world.tenant, proposal))).pages)
    assert "Renewal for" in text
    assert "$2,014.50" in text  # each renewal invoice
    assert "$2,370.00" in text  # the list amount
    assert "loyalty" in text


def test_worklist_orders_by_attention_and_defaults_to_mine(console):
    world = console.world
    a1, a2, a3 = (console.accounts[k] for k in ("acct-1", "acct-2", "acct-3"))
    score(a1, readiness=40, health=90)
    score(a2, readiness=30, health=80)
    score(a3, readiness=20, health=40, churn=["usage_drop"])
    open_signal(a2)
    feedback = Feedback.objects.create(
        tenant=world.tenant, account=a1, kind=FeedbackKind.TALK_TO_PERSON, text="Call me"
    )
    task_services.task_from_talk_request(world.tenant, feedback=feedback)
    assert task_services.tasks_from_signals(world.tenant) == 1
    assert task_services.tasks_from_signals(world.tenant) == 0  # idempotent
    task = ConsoleTask.objects.get(tenant=world.tenant, kind=TaskKind.TALK_REQUEST)
    assert task.assigned_to == world.staff[Role.CSM]

    mine = worklist(world.tenant, filters=WorklistFilters(), user_id=world.staff[Role.CSM].pk)
    # a1 (monthly, renews in 20 days): 40 + 5 + 40 (talk request) + 25 (renewal) = 110;
    # a2 (monthly): 30 + 10 + 20 (signal) + 10 (its task) + 25 = 95;
    # a3 (annual, a year away): 20 + 30 + 30 (churn) = 80.
    assert [(r["id"], r["attention"]) for r in mine.rows] == [(a1.pk, 110), (a2.pk, 95), (a3.pk, 80)]
    assert mine.rows[0]["talk_requests"] == 1
    assert mine.rows[1]["open_signals"] == 1
    assert mine.rows[2]["churn_count"] == 1
    pm = worklist(world.tenant, filters=WorklistFilters(), user_id=world.staff[Role.PRODUCT_MANAGER].pk)
    assert pm.rows == []
    everyone = worklist(world.tenant, filters=WorklistFilters(csm="all", stage="at_risk"), user_id=None)
    assert {r["id"] for r in everyone.rows} == {a3.pk, console.accounts["acct-4"].pk}
    business = worklist(world.tenant, filters=WorklistFilters(tier="business"), user_id=world.staff[Role.CSM].pk)
    assert ([r["id"] for r in business.rows], business.total) == ([a2.pk], 1)


PAGES = ["/console/", "/console/proposals/", "/console/playbooks/"]


def test_pages_per_role_and_tenant_walls(console, workspace_b):
    world = console.world
    proposal = build(console, percent=Decimal("15"))
    services.submit_proposal(world.tenant, proposal=proposal, actor=world.staff[Role.CSM])
    a1 = console.accounts["acct-1"]
    own = [
        *PAGES,
        f"/console/accounts/{a1.pk}/",
        f"/console/proposals/{proposal.pk}/",
        f"/console/proposals/{proposal.pk}/document/",
        f"/console/accounts/{a1.pk}/proposals/new/",
    ]
    for role in Role.values:
        client = world.staff_client(role)
        for url in own:
            status = client.get(url).status_code
            expected = 403 if url.endswith("/proposals/new/") and role in (Role.ANALYST, Role.PRODUCT_MANAGER) else 200
            assert status == expected, (role, url, status)
    # Analyst reads only; PM manages playbooks, CSM does not.
    analyst, pm, csm = (world.staff_client(r) for r in (Role.ANALYST, Role.PRODUCT_MANAGER, Role.CSM))
    assert analyst.post(f"/console/accounts/{a1.pk}/notes/", {"body": "x"}).status_code == 403
    assert csm.post("/console/playbooks/new/", {"name": "Upsell"}).status_code == 403
    assert pm.post("/console/playbooks/new/", {"name": "Upsell", "active": "on"}).status_code == 302
    assert Playbook.objects.filter(tenant=world.tenant, name="Upsell").exists()
    assert csm.post(f"/console/proposals/{proposal.pk}/approve/").status_code == 403
    assert pm.post(f"/console/proposals/{proposal.pk}/approve/", {"note": "ok"}).status_code == 302
    # Another tenant's staff: every id is 404.
    other = workspace_b.world.staff_client(Role.OWNER)
    for url in own[3:]:
        assert other.get(url).status_code == 404, url
    for url in (
        f"/console/accounts/{a1.pk}/notes/",
        f"/console/proposals/{proposal.pk}/share/",
        f"/console/proposals/{proposal.pk}/approve/",
    ):
        assert other.post(url, {"body": "x"}).status_code == 404, url
    # Bad input: 400 with the field, nothing written.
    response = csm.post(
        f"/console/accounts/{a1.pk}/proposals/new/", {"tier": "business", "interval": "week", "seats": 0}
    )
    assert response.status_code == 400
    assert Proposal.objects.filter(tenant=world.tenant).count() == 1


def test_account_page_shows_the_playbook_for_its_open_signal(console):
    world = console.world
    a1 = console.accounts["acct-1"]
    open_signal(a1)
    Playbook.objects.create(
        tenant=world.tenant,
        name="Near the limit",
        signal_kinds=["upgrade_opportunity"],
        when_to_propose="Above 80 % for a week.",
    )
    Playbook.objects.create(tenant=world.tenant, name="Churn rescue", signal_kinds=["churn_risk"])
    body = world.staff_client(Role.CSM).get(f"/console/accounts/{a1.pk}/").content.decode()
    assert "Above 80 % for a week." in body and "Churn rescue" not in body


def test_signed_out_goes_to_the_staff_sign_in(client):
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_term_end_for_a_fresh_two_year_term():
    now = timezone.now().replace(microsecond=0)
    assert add_interval(now, "year", 2) - now >= timedelta(days=730)
