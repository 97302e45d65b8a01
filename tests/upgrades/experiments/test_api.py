"""GET /api/v1/experiments[/{id}]: arms, state, MDE sentence and results; window validated; tenants are walls."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.upgrades.experiments.test_results_admin import _assign, _upgrade
from tests.usage.factories import make_catalog
from upgrades.experiments.buckets import CONTROL
from upgrades.experiments.models import Experiment, ExperimentState

URL = "/api/v1/experiments"
pytestmark = pytest.mark.django_db

ARMS = [{"key": "b", "weight": 1, "template_variant": "b", "channel": "in_app", "trial_days": 21, "anchor": False}]


def experiment(world, **fields) -> Experiment:
    fields.setdefault("variants", ARMS)
    return Experiment.objects.create(tenant=world.tenant, name="Copy test", state=ExperimentState.RUNNING,
                                     started_at=timezone.now(), control_percent=50, **fields)  # fmt: skip


def populate(world, exp: Experiment, *, control: int, treated: int, control_won: int, treated_won: int) -> None:
    """Assigned accounts 40 days ago, some of which upgraded within the window (MRR +2,000; 2,000 charged)."""
    catalog = make_catalog(world.tenant)
    for arm, count, won in ((CONTROL, control, control_won), ("b", treated, treated_won)):
        rows = _assign(world.tenant, exp, arm, count)
        for row in rows[:won]:
            _upgrade(world.tenant, row, mrr=2_000, charged=2_000, catalog=catalog)


def test_detail_shows_arms_state_plan_and_results(world_a):
    exp = experiment(world_a)
    populate(world_a, exp, control=40, treated=40, control_won=2, treated_won=12)
    response = world_a.api("read").get(f"{URL}/{exp.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "running" and body["control_percent"] == 50
    assert body["arms"] == [{"key": "b", "weight": 1, "template_variant": "b", "discount_variant": "",
                             "anchor": False, "channel": "in_app", "trial_days": 21}]  # fmt: skip
    assert "you can detect a lift of" in body["mde_sentence"]
    results = body["results"]
    assert results["window_days"] == 30 and results["confidence_percent"] == 95 and results["matured"] == 80
    arms = {a["arm"]: a for a in results["arms"]}
    control, b = arms[CONTROL], arms["b"]
    assert (control["assigned"], control["converted"], control["conversion"]) == (40, 2, 0.05)
    assert (b["assigned"], b["converted"], b["conversion"]) == (40, 12, 0.3)
    assert control["billed_revenue_per_account"] == 100 and b["billed_revenue_per_account"] == 600
    assert (control["mrr_gained_per_account"], b["mrr_gained_per_account"]) == (100, 600)
    assert b["mrr_gained_currency"] == "USD"
    assert control["conversion_lift"] is None and control["verdict"] is None
    lift = b["conversion_lift"]
    assert lift["estimate"] == pytest.approx(0.25) and lift["low"] < 0.25 < lift["high"] and lift["significant"]
    assert b["revenue_lift"]["estimate"] == pytest.approx(500)
    assert "converts better than control" in b["verdict"]
    assert results["srm"] == {"mismatch": False, "p_value": pytest.approx(1.0)}


def test_a_lopsided_split_is_flagged(world_a):
    exp = experiment(world_a)
    populate(world_a, exp, control=10, treated=90, control_won=0, treated_won=0)
    results = world_a.api("read").get(f"{URL}/{exp.pk}").json()["results"]
    assert results["srm"]["mismatch"] is True and "Sample ratio mismatch" in results["verdict"]


def test_list_is_the_tenants_own(world_a, world_b):
    mine = experiment(world_a)
    theirs = experiment(world_b)
    response = world_a.api("read").get(URL)
    assert response.status_code == 200, response.content
    ids = [e["id"] for e in response.json()["results"]]
    assert ids == [mine.pk] and theirs.pk not in ids


def test_another_tenants_experiment_is_404_and_leaks_nothing(world_a, world_b):
    theirs = experiment(world_b)
    response = world_a.api("read").get(f"{URL}/{theirs.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found" and "Copy test" not in response.content.decode()
    assert world_a.api("read").get(f"{URL}/999999999999").status_code == 404


def test_window_is_validated(world_a):
    exp = experiment(world_a)
    ok = world_a.api("read").get(f"{URL}/{exp.pk}", {"window": "90"})
    assert ok.status_code == 200 and ok.json()["results"]["window_days"] == 90
    bad = world_a.api("read").get(URL, {"window": "7"})
    assert bad.status_code == 400 and "window" in bad.json()["error"]["details"]


def test_read_only_and_needs_a_key(world_a, client):
    exp = experiment(world_a)
    assert client.get(URL).status_code in (401, 403)
    assert world_a.api("write").post(URL, {}).status_code == 405
    assert world_a.api("write").delete(f"{URL}/{exp.pk}").status_code == 405
