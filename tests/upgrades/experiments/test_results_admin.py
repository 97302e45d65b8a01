"""Results against hand-worked numbers (conversion, billed revenue, MRR per assigned account over 30/90 days),
the governance moves with their roles, and the admin pages: MDE before launch, results, tenant walls, roles."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import CustomerAccount, Role
from billing.models import LicenseChange, PlanChange, PlanChangeState
from catalog.models import Price
from tests.upgrades.offers.conftest import make_live_settings
from tests.usage.factories import give_license, make_catalog
from upgrades.experiments.models import CONTROL, Experiment, ExperimentAssignment, ExperimentState
from upgrades.experiments.results import plan, results
from upgrades.experiments.services import create_experiment, start_experiment
from upgrades.offers.errors import InvalidInput, PermissionDenied

pytestmark = pytest.mark.django_db
NOW = timezone.now()
VARIANTS = [{"key": "b", "weight": 1}]


def _experiment(tenant, **fields) -> Experiment:
    fields.setdefault("variants", VARIANTS)
    fields.setdefault("control_percent", 50)
    fields.setdefault("state", ExperimentState.RUNNING)
    return Experiment.objects.create(tenant=tenant, name="Discount test", **fields)


def _assign(tenant, experiment, arm, n, *, start=0, days_ago=40):
    rows = []
    for i in range(start, start + n):
        account = CustomerAccount.objects.create(tenant=tenant, external_id=f"{arm}-{i}", name=f"{arm} {i}")
        at = NOW - dt.timedelta(days=days_ago)
        rows.append(ExperimentAssignment.objects.create(tenant=tenant, experiment=experiment, account=account, arm=arm,
                                                        bucket=0, assigned_at=at))  # fmt: skip
    return rows


def _upgrade(tenant, row, *, mrr=5_000, charged=4_000, after_days=5, catalog=None):
    at = row.assigned_at + dt.timedelta(days=after_days)
    LicenseChange.objects.create(tenant=tenant, account=row.account, kind="upgrade", actor_label="t", mrr_before=1_000,
                                 mrr_after=1_000 + mrr, effective_at=at)  # fmt: skip
    lic = give_license(row.account, catalog.team)
    price = Price.objects.filter(tenant=tenant, tier=catalog.business).first() or Price.objects.create(
        tenant=tenant, tier=catalog.business, key="business-month", interval="month", amount=9_900
    )
    PlanChange.objects.create(tenant=tenant, license=lic, account=row.account, kind="upgrade", target_price=price,
                              state=PlanChangeState.SETTLED, settled_at=at, charged_amount=charged,
                              quote_expires_at=at)  # fmt: skip


def test_results_match_hand_worked_numbers(world_a):
    catalog = make_catalog(world_a.tenant)
    experiment = _experiment(world_a.tenant)
    treated = _assign(world_a.tenant, experiment, "b", 10)
    controls = _assign(world_a.tenant, experiment, CONTROL, 10)
    for row in treated[:4]:
        _upgrade(world_a.tenant, row, catalog=catalog)
    _upgrade(world_a.tenant, controls[0], catalog=catalog)  # a control who upgraded on their own counts
    _upgrade(world_a.tenant, controls[1], after_days=45, catalog=catalog)  # outside 30 days, inside 90
    out = results(world_a.tenant, experiment, window_days=30, now=NOW)
    b, c = out.arms["b"], out.arms[CONTROL]
    assert (b.assigned, b.converted, c.assigned, c.converted) == (10, 4, 10, 1)
    assert out.currencies == ["USD"]
    assert b.revenue_per_account("USD") == 1_600 and c.revenue_per_account("USD") == 400  # 4 x 4,000 / 10, 4,000 / 10
    assert b.mrr_minor == [("USD", 2_000)] and c.mrr_minor == [("USD", 500)]
    comparison = out.comparisons[0]
    assert abs(comparison.conversion.estimate - 0.3) < 1e-12
    se = (0.4 * 0.6 / 10 + 0.1 * 0.9 / 10) ** 0.5
    assert abs(comparison.conversion.low - (0.3 - 1.959964 * se)) < 1e-5
    [revenue] = comparison.revenue
    assert revenue.currency == "USD" and revenue.comparison.estimate == 1_200
    assert out.verdict.startswith("Not yet significant") and out.srm is not None and not out.srm.mismatch
    assert results(world_a.tenant, experiment, window_days=90, now=NOW).arms[CONTROL].converted == 2


def test_a_skewed_split_is_flagged_on_the_results(world_a):
    experiment = _experiment(world_a.tenant)
    _assign(world_a.tenant, experiment, "b", 80)
    _assign(world_a.tenant, experiment, CONTROL, 30)
    out = results(world_a.tenant, experiment, now=NOW)
    assert out.srm.mismatch and out.verdict.startswith("Sample ratio mismatch")


def test_the_plan_says_what_it_can_detect():
    experiment = Experiment(expected_monthly_accounts=400, planned_days=30, control_percent=20, variants=VARIANTS,
                            baseline_conversion_percent=5, alpha="0.05", power="0.8")  # fmt: skip
    said = plan(experiment)
    assert said.accounts == 400 and said.mde_points["b"] and 8 < said.mde_points["b"] < 12
    assert "With ~400 accounts a month" in said.sentence and "points or more" in said.sentence


def test_governance_roles_and_four_eyes(world_a):
    make_live_settings(world_a.tenant, discount_variants=[{"key": "launch10", "percent": "10"}])
    pm = world_a.staff[Role.PRODUCT_MANAGER]
    with pytest.raises(PermissionDenied):
        create_experiment(world_a.tenant, actor=world_a.staff[Role.ANALYST], name="x", variants=VARIANTS)
    with pytest.raises(InvalidInput) as bad:
        create_experiment(world_a.tenant, actor=pm, name="x", variants=[{"key": "b", "discount_variant": "huge"}])
    assert bad.value.details["field"] == "variants[0].discount_variant"
    draft = create_experiment(world_a.tenant, actor=pm, name="x",
                              variants=[{"key": "b", "discount_variant": "launch10"}])  # fmt: skip
    with pytest.raises(PermissionDenied):
        start_experiment(world_a.tenant, experiment=draft, actor=pm)  # its author may not start it
    started = start_experiment(world_a.tenant, experiment=draft, actor=world_a.staff[Role.OWNER])
    assert started.state == ExperimentState.RUNNING


def test_admin_pages_show_the_plan_and_results_and_keep_walls(world_a, world_b):
    make_live_settings(world_a.tenant)
    owner, analyst = world_a.staff_client(Role.OWNER), world_a.staff_client(Role.ANALYST)
    answer = world_a.staff_client(Role.PRODUCT_MANAGER).post(reverse("admin:upgrades_experiment_add"), {
        "name": "Copy B", "control_percent": "20", "expected_monthly_accounts": "400",
        "baseline_conversion_percent": "5", "planned_days": "30", "variants": '[{"key": "copy-b"}]'})  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()[:1500]
    experiment = Experiment.objects.get(tenant=world_a.tenant)
    url = reverse("admin:upgrades_experiment_change", args=[experiment.pk])
    page = analyst.get(url).content.decode()
    assert "With ~400 accounts a month" in page and 'data-testid="verdict"' in page
    assert 'name="move"' not in page  # read-only for the analyst
    move = reverse("admin:upgrades_experiment_move", args=[experiment.pk])
    assert analyst.post(move, {"move": "start"}).status_code == 403
    assert owner.post(move, {"move": "start"}).status_code == 302
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.RUNNING
    bad = owner.post(reverse("admin:upgrades_experiment_add"), {"name": "y", "variants": "not json"})
    assert bad.status_code == 200 and "errornote" in bad.content.decode() or "error" in bad.content.decode()
    theirs = _experiment(world_b.tenant)
    for name in ("change", "edit", "move"):
        assert owner.get(reverse(f"admin:upgrades_experiment_{name}", args=[theirs.pk])).status_code == 404
    assert owner.post(reverse("admin:upgrades_experiment_move", args=[theirs.pk]), {"move": "stop"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == ExperimentState.RUNNING


def test_held_out_accounts_are_the_running_experiments_controls(world_a, world_b):
    from upgrades.experiments.selectors import held_out_account_ids, is_held_out

    experiment = _experiment(world_a.tenant)
    control = _assign(world_a.tenant, experiment, CONTROL, 1)[0]
    treated = _assign(world_a.tenant, experiment, "b", 1)[0]
    stopped = _experiment(world_a.tenant, state=ExperimentState.STOPPED)
    _assign(world_a.tenant, stopped, CONTROL, 1, start=5)
    assert list(held_out_account_ids(world_a.tenant)) == [control.account_id]
    assert is_held_out(world_a.tenant, control.account_id) and not is_held_out(world_a.tenant, treated.account_id)
    assert not held_out_account_ids(world_b.tenant).exists()


def test_the_results_page_shows_points_and_money(world_a):
    catalog = make_catalog(world_a.tenant)
    experiment = _experiment(world_a.tenant)
    treated = _assign(world_a.tenant, experiment, "b", 10)
    _assign(world_a.tenant, experiment, CONTROL, 10)
    for row in treated[:4]:
        _upgrade(world_a.tenant, row, catalog=catalog)
    page = world_a.staff_client(Role.ANALYST).get(reverse("admin:upgrades_experiment_change", args=[experiment.pk]))
    text = page.content.decode()
    assert "40.0%" in text and "$16.00" in text and "40.0 (" in text  # 4 of 10; 4 x $40 / 10; +40 points
