"""Experiment controls get no CSM upgrade outreach: the worklist marks them and drops readiness from their
attention, proposals and upgrade outreach (and trials) are refused with a clear message, a check-in that is
not about an upgrade stays allowed; once the experiment stops the account is ordinary again."""

from __future__ import annotations

import pytest

from accounts.errors import Conflict
from accounts.models import Role
from messaging.models import Message
from tests.services import require_postgres
from upgrades.console.models import ConsoleTask, Proposal, ProposalState
from upgrades.console.services import proposals as services
from upgrades.console.services import tasks as task_services
from upgrades.console.services.options import OptionRequest
from upgrades.console.worklist import WorklistFilters, worklist
from upgrades.experiments.models import CONTROL, Experiment, ExperimentAssignment, ExperimentState

from .helpers import open_signal, publish_policy, score

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(workspace_a):
    world = workspace_a.world
    csm = world.staff[Role.CSM]
    for key in ("acct-1", "acct-2"):
        acct = workspace_a.accounts[key]
        acct.assigned_csm = csm
        acct.save(update_fields=["assigned_csm"])
    publish_policy(world.tenant)
    experiment = Experiment.objects.create(tenant=world.tenant, name="Nudge test", state=ExperimentState.RUNNING)
    for key, arm, bucket in (("acct-1", CONTROL, 10), ("acct-2", "nudge", 9000)):
        ExperimentAssignment.objects.create(
            tenant=world.tenant, experiment=experiment, account=workspace_a.accounts[key], arm=arm, bucket=bucket
        )
    workspace_a.experiment = experiment
    return workspace_a


def _stop(ws):
    Experiment.objects.filter(pk=ws.experiment.pk).update(state=ExperimentState.STOPPED)


def _build(ws, key="acct-1"):
    world = ws.world
    return services.build_proposal(
        world.tenant,
        account=ws.accounts[key],
        actor=world.staff[Role.CSM],
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=2)],
    )


def test_worklist_marks_the_control_and_leaves_readiness_out_of_its_attention(held):
    require_postgres()  # the worklist is one raw PostgreSQL statement (SQLite: see the issue 17 note)
    world = held.world
    a1, a2 = held.accounts["acct-1"], held.accounts["acct-2"]
    score(a1, readiness=40, health=90)
    score(a2, readiness=40, health=90)
    rows = {
        r["id"]: r for r in worklist(world.tenant, filters=WorklistFilters(), user_id=world.staff[Role.CSM].pk).rows
    }
    # Both monthly and renewing within 45 days: 40 + 5 + 25 = 70 for the variant; the control loses its 40.
    assert (rows[a2.pk]["held_out"], rows[a2.pk]["attention"]) == (False, 70)
    assert (rows[a1.pk]["held_out"], rows[a1.pk]["attention"]) == (True, 30)
    assert rows[a1.pk]["readiness"] == 40  # still shown, just not a reason to call about an upgrade

    body = world.staff_client(Role.CSM).get("/console/").content.decode()
    assert body.count("in a control group — no upgrade outreach") == 1

    _stop(held)
    rows = {
        r["id"]: r for r in worklist(world.tenant, filters=WorklistFilters(), user_id=world.staff[Role.CSM].pk).rows
    }
    assert (rows[a1.pk]["held_out"], rows[a1.pk]["attention"]) == (False, 70)


def test_no_signal_task_for_a_control_until_the_experiment_stops(held):
    world = held.world
    open_signal(held.accounts["acct-1"])
    open_signal(held.accounts["acct-2"])
    assert task_services.tasks_from_signals(world.tenant) == 1
    assert not ConsoleTask.objects.filter(tenant=world.tenant, account=held.accounts["acct-1"]).exists()
    _stop(held)
    assert task_services.tasks_from_signals(world.tenant) == 1
    assert ConsoleTask.objects.filter(tenant=world.tenant, account=held.accounts["acct-1"]).exists()


def test_proposals_refused_for_a_control_with_a_clear_message(held):
    world = held.world
    with pytest.raises(Conflict) as exc:
        _build(held)
    assert exc.value.code == "held_out" and "control group" in exc.value.message
    assert not Proposal.objects.filter(tenant=world.tenant, account=held.accounts["acct-1"]).exists()

    client = world.staff_client(Role.CSM)
    url = f"/console/accounts/{held.accounts['acct-1'].pk}/"
    page = client.get(url).content.decode()
    assert "no upgrade outreach" in page and "Build a proposal" not in page and "Start trial" not in page
    builder = client.get(url + "proposals/new/").content.decode()
    assert "no upgrade outreach while its experiment runs" in builder
    response = client.post(
        url + "proposals/new/", {"kind": "upgrade", "tier": "business", "interval": "year", "seats": 3, "term_years": 2}
    )
    assert response.status_code == 409 and "control group" in response.content.decode()
    assert not Proposal.objects.filter(tenant=world.tenant, account=held.accounts["acct-1"]).exists()

    # A proposal made before the account was held out is not shared while the experiment runs.
    _stop(held)
    proposal = _build(held)
    services.submit_proposal(world.tenant, proposal=proposal, actor=world.staff[Role.CSM])
    Experiment.objects.filter(pk=held.experiment.pk).update(state=ExperimentState.RUNNING)
    response = client.post(f"/console/proposals/{proposal.pk}/share/")
    assert response.status_code == 409 and "control group" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.state == ProposalState.READY


def test_upgrade_outreach_refused_check_in_allowed(held):
    world = held.world
    client = world.staff_client(Role.CSM)
    url = f"/console/accounts/{world.account.pk}/outreach/"
    assert world.account == held.accounts["acct-1"] and world.contact.account_id == world.account.pk
    refused = client.post(url, {"contact": world.contact.pk, "note": "Business has SSO"})
    assert refused.status_code == 409 and "no upgrade outreach" in refused.content.decode()
    assert not Message.objects.filter(tenant=world.tenant, contact=world.contact).exists()
    trial = client.post(
        f"/console/accounts/{world.account.pk}/trial/", {"target_kind": "tier", "target_key": "business"}
    )
    assert trial.status_code == 409 and "control group" in trial.content.decode()

    ok = client.post(url, {"contact": world.contact.pk, "note": "How is onboarding going?", "purpose": "check_in"})
    assert ok.status_code == 302
    assert Message.objects.filter(tenant=world.tenant, contact=world.contact, channel="csm").count() == 1
    # A hand-made check-in task is fine too.
    task = client.post(
        f"/console/accounts/{world.account.pk}/tasks/",
        {"kind": "check_in", "title": "Quarterly check-in", "due_at": "2030-01-10T10:00"},
    )
    assert task.status_code == 302
