"""Console actions through their pages: saved views, tasks, notes, CSM outreach counted against the message cap,
a CSM grant from the account page; bad input is a 400 with the field and nothing is written."""

from __future__ import annotations

import json

import pytest

from accounts.models import Role
from billing.models import LicenseGrant
from messaging.models import Message
from tests.services import require_postgres
from upgrades.console.models import AccountNote, ConsoleTask, SavedView

pytestmark = pytest.mark.django_db


@pytest.fixture
def csm_world(workspace_a):
    world = workspace_a.world
    world.account.assigned_csm = world.staff[Role.CSM]
    world.account.save(update_fields=["assigned_csm"])
    return workspace_a


def test_saved_view_applies_its_filters(csm_world):
    require_postgres()  # the worklist is one raw PostgreSQL statement (SQLite: see the issue 17 note)
    client = csm_world.world.staff_client(Role.CSM)
    response = client.post("/console/views/", {"name": "At risk", "csm": "all", "stage": "at_risk"})
    assert response.status_code == 302
    view = SavedView.objects.get(tenant=csm_world.world.tenant, name="At risk")
    assert view.filters == {"csm": "all", "stage": "at_risk"}
    body = client.get(f"/console/?view={view.pk}").content.decode()
    assert "Alpha Risky Co" in body and "Alpha Trial Co" not in body
    # Another person's saved view is not theirs to use: the default worklist answers.
    other = csm_world.world.staff_client(Role.ANALYST).get(f"/console/?view={view.pk}").content.decode()
    assert "Alpha Trial Co" in other


def test_task_note_outreach_and_grant_from_the_account_page(csm_world):
    world = csm_world.world
    account = world.account
    client = world.staff_client(Role.CSM)
    url = f"/console/accounts/{account.pk}/"
    assert (
        client.post(
            url + "tasks/", {"kind": "check_in", "title": "Quarterly check-in", "due_at": "2030-01-10T10:00"}
        ).status_code
        == 302
    )
    task = ConsoleTask.objects.get(tenant=world.tenant, account=account)
    assert task.assigned_to == world.staff[Role.CSM]
    bad = client.post(url + "tasks/", {"kind": "party", "title": "", "due_at": "soon"})
    assert bad.status_code == 400 and {"kind", "title", "due_at"} <= set(json.loads(bad.content))
    assert ConsoleTask.objects.filter(tenant=world.tenant).count() == 1
    assert client.post(f"/console/tasks/{task.pk}/close/").status_code == 302
    assert client.post(url + "notes/", {"body": "Wants SSO next quarter."}).status_code == 302
    assert AccountNote.objects.filter(tenant=world.tenant, account=account).count() == 1

    assert client.post(url + "outreach/", {"contact": world.contact.pk, "note": "Renewal call"}).status_code == 302
    message = Message.objects.get(tenant=world.tenant, contact=world.contact)
    assert message.channel == "csm"  # counted with email and in-app against the same cap

    # acct-1 already runs a Business trial: the same grant again is a conflict; acct-3 gets it.
    assert client.post(url + "grant/", {"tier": "business", "days": 14, "reason": "Pilot"}).status_code == 409
    acct3 = csm_world.accounts["acct-3"]
    grant_url = f"/console/accounts/{acct3.pk}/grant/"
    assert client.post(grant_url, {"tier": "business", "days": 14, "reason": "Pilot"}).status_code == 302
    assert LicenseGrant.objects.filter(tenant=world.tenant, account=acct3, kind="csm_grant").exists()
    assert client.post(grant_url, {"tier": "nope", "days": 14, "reason": "x"}).status_code == 400

    body = client.get(url).content.decode()
    assert "Wants SSO next quarter." in body and "CSM outreach" in body
