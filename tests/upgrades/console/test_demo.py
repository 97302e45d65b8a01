"""seed_console_demo is idempotent and leaves what the demo promises: tasks from real signals and a talk request,
a playbook with objections, a proposal awaiting approval and a renewal packet whose PDF opens."""

from __future__ import annotations

import io

import pytest

from upgrades.console.demo import seed_console_demo
from upgrades.console.document import proposal_pdf
from upgrades.console.models import ConsoleTask, Objection, Proposal, ProposalKind, ProposalState

from .helpers import open_signal, publish_policy

pytestmark = pytest.mark.django_db


def test_demo_twice_makes_everything_once(workspace_a):
    from pypdf import PdfReader

    tenant = workspace_a.world.tenant
    publish_policy(tenant)
    open_signal(workspace_a.accounts["acct-1"])
    first = seed_console_demo(tenant)
    again = seed_console_demo(tenant)
    assert first["renewal"] == again["renewal"] and first["awaiting_approval"] == again["awaiting_approval"]
    assert again["tasks"] == 0
    assert ConsoleTask.objects.filter(tenant=tenant).count() == first["tasks"] == 2  # the signal, the talk request
    assert Objection.objects.filter(tenant=tenant).count() == 3
    pending = Proposal.objects.get(pk=first["awaiting_approval"])
    assert pending.state == ProposalState.AWAITING_APPROVAL and pending.approval_needed
    renewal = Proposal.objects.get(pk=first["renewal"])
    assert renewal.kind == ProposalKind.RENEWAL and renewal.loyalty
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(proposal_pdf(tenant, renewal))).pages)
    assert "Demo: renewal packet" in text and "Total over the term" in text
    # A step-up ramp within policy (the 2-year rule's 10 %, then 7.5 %), ready for the CSM to share.
    ramped = Proposal.objects.get(pk=first["ramp"])
    assert first["ramp"] == again["ramp"] and ramped.state == ProposalState.READY and not ramped.approval_needed
    ramp = ramped.options.get(position=0)
    assert ramp.option["discount"]["year_percents"] == ["10.00", "7.50"]
    assert [r["percent"] for r in ramp.price_path] == ["10.00", "7.50"]


def test_beat_sweep_makes_tasks_once(workspace_a):
    from upgrades.console.tasks import sweep_console_tasks

    open_signal(workspace_a.accounts["acct-1"])
    assert sweep_console_tasks() == 1
    assert sweep_console_tasks() == 0
