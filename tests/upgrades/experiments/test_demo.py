"""The experiments demo: one running experiment with assignments and readable results, seeded once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, CustomerAccount, Role
from tests.upgrades.offers.conftest import make_live_settings
from upgrades.experiments.demo import NAME, seed_experiments_demo
from upgrades.experiments.models import CONTROL, Experiment, ExperimentAssignment, ExperimentState

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_a_running_experiment_once(world_a):
    make_live_settings(world_a.tenant, discount_variants=[{"key": "none", "percent": "0"},
                                                          {"key": "launch10", "percent": "10"}])  # fmt: skip
    for i in range(30):
        CustomerAccount.objects.create(tenant=world_a.tenant, external_id=f"d{i}", name=f"Demo {i}")
    first = seed_experiments_demo(world_a.tenant)
    again = seed_experiments_demo(world_a.tenant)
    experiment = Experiment.objects.get(tenant=world_a.tenant, name=NAME)
    assert experiment.state == ExperimentState.RUNNING and first["assigned"] == 31 and again["assigned"] == 0
    arms = set(ExperimentAssignment.objects.filter(experiment=experiment).values_list("arm", flat=True))
    assert arms == {"list-price", "with-discount", CONTROL}
    assert experiment.variants[1]["discount_variant"] == "launch10"
    assert AuditEntry.objects.filter(action="experiment.started", actor_label="demo-seed").count() == 1
    page = world_a.staff_client(Role.ANALYST).get(reverse("admin:upgrades_experiment_change", args=[experiment.pk]))
    assert page.status_code == 200 and 'data-testid="verdict"' in page.content.decode()
