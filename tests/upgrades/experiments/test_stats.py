"""Assignment is deterministic and balanced; the statistics detect a broken split and hold their error rate."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
from scipy import stats as sps

from upgrades.experiments.buckets import arm_for_bucket, bucket_of
from upgrades.experiments.models import CONTROL
from upgrades.experiments.stats import (
    compare_conversion,
    compare_revenue,
    minimum_detectable_effect,
    sample_ratio_mismatch,
)


def _experiment(control=20, weights=(1, 1), pk=7, tenant_id=3):
    variants = [{"key": f"v{i}", "weight": w} for i, w in enumerate(weights)]
    return SimpleNamespace(pk=pk, tenant_id=tenant_id, control_percent=control, variants=variants)


def test_buckets_are_stable_across_processes():
    here = [bucket_of(3, 7, a) for a in range(20)]
    code = "from upgrades.experiments.buckets import bucket_of; print([bucket_of(3, 7, a) for a in range(20)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={
        "PYTHONHASHSEED": "123", "PATH": ""})  # fmt: skip
    assert other.stdout.strip() == str(here)
    assert bucket_of(3, 7, 1) != bucket_of(4, 7, 1) or bucket_of(3, 8, 1) != bucket_of(3, 7, 1)


def test_ten_thousand_accounts_split_as_configured():
    exp = _experiment(control=20, weights=(1, 3))
    arms = [arm_for_bucket(exp, bucket_of(exp.tenant_id, exp.pk, a)) for a in range(10_000)]
    observed = [arms.count(CONTROL), arms.count("v0"), arms.count("v1")]
    expected = [2_000, 2_000, 6_000]
    assert sps.chisquare(observed, f_exp=expected).pvalue > 0.001
    assert all(abs(o - e) < 0.05 * e for o, e in zip(observed, expected, strict=True))
    # the same account, asked again, gets the same arm
    assert arms[:50] == [arm_for_bucket(exp, bucket_of(exp.tenant_id, exp.pk, a)) for a in range(50)]


def test_a_skewed_split_is_flagged_and_a_fair_one_is_not():
    shares = {"v0": 0.4, "v1": 0.4, CONTROL: 0.2}
    skewed = sample_ratio_mismatch({"v0": 4_300, "v1": 3_900, CONTROL: 1_800}, shares)
    fair = sample_ratio_mismatch({"v0": 4_020, "v1": 3_990, CONTROL: 1_990}, shares)
    assert skewed is not None and skewed.mismatch and skewed.p_value < 0.001
    assert fair is not None and not fair.mismatch


def test_a_a_experiments_find_a_difference_five_times_in_a_hundred():
    rng = np.random.default_rng(20261202)
    runs, n_variant, n_control, rate = 2_000, 800, 400, 0.1
    converted = rng.binomial(n_variant, rate, size=runs)
    control = rng.binomial(n_control, rate, size=runs)
    positives = sum(
        compare_conversion(
            converted=int(c), assigned=n_variant, control_converted=int(k), control_assigned=n_control
        ).significant  # fmt: skip
        for c, k in zip(converted, control, strict=True)
    )
    assert 0.04 <= positives / runs <= 0.06


def test_hand_worked_conversion_and_revenue():
    # 30/300 = 10% against 5/100 = 5%: diff 0.05, Wald SE sqrt(.1*.9/300 + .05*.95/100) = 0.02784
    result = compare_conversion(converted=30, assigned=300, control_converted=5, control_assigned=100)
    se = (0.1 * 0.9 / 300 + 0.05 * 0.95 / 100) ** 0.5
    assert abs(result.estimate - 0.05) < 1e-12
    assert abs(result.low - (0.05 - 1.959964 * se)) < 1e-5 and abs(result.high - (0.05 + 1.959964 * se)) < 1e-5
    assert not result.significant and abs(result.p_value - 0.0725) < 1e-3
    revenue = compare_revenue([0, 0, 100, 200], [0, 0, 0, 50])
    assert revenue.estimate == 62.5 and revenue.low < 0 < revenue.high and not revenue.significant


def test_minimum_detectable_effect_shrinks_with_traffic():
    small = minimum_detectable_effect(baseline=0.05, n_treatment=320, n_control=80)
    large = minimum_detectable_effect(baseline=0.05, n_treatment=3_200, n_control=800)
    assert 0.08 < small < 0.12 and 0.02 < large < 0.04
    assert minimum_detectable_effect(baseline=0.05, n_treatment=1, n_control=1) is None
