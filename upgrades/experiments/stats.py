"""The statistics of an experiment, from scipy and statsmodels (nothing hand-rolled beyond arithmetic).

- `minimum_detectable_effect`: the smallest conversion lift (percentage points) a two-sided test at `alpha`
  finds with `power`, for the traffic expected (statsmodels NormalIndPower on Cohen's h).
- `compare_conversion`: lift of a variant's conversion over control, its confidence interval and p-value
  (statsmodels confint_proportions_2indep / test_proportions_2indep, Wald difference).
- `compare_revenue`: the difference in mean revenue per assigned account, Welch's t-test with its interval
  (scipy.stats.ttest_ind, equal_var=False).
- `sample_ratio_mismatch`: observed arm counts against the configured split, chi-squared goodness of fit
  (scipy.stats.chisquare); p < 0.001 flags the split as broken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

SRM_P_THRESHOLD = 0.001


def minimum_detectable_effect(
    *, baseline: float, n_treatment: float, n_control: float, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest absolute lift in conversion (a fraction, e.g. 0.08) detectable; None if there is no traffic."""
    if n_treatment < 2 or n_control < 2 or not 0 < baseline < 1:
        return None
    h = NormalIndPower().solve_power(
        effect_size=None, nobs1=n_treatment, alpha=alpha, power=power, ratio=n_control / n_treatment,
        alternative="two-sided",
    )  # fmt: skip
    # Cohen's h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)): back to the treated conversion rate p2.
    angle = float(h) / 2 + math.asin(math.sqrt(baseline))
    if angle >= math.pi / 2:
        return 1 - baseline
    return math.sin(angle) ** 2 - baseline


@dataclass(frozen=True)
class Comparison:
    estimate: float  # variant - control (conversion: a fraction; revenue: minor units per account)
    low: float
    high: float
    p_value: float
    significant: bool

    @property
    def points(self) -> tuple[float, float, float]:
        """A conversion comparison in percentage points: (estimate, low, high)."""
        return round(self.estimate * 100, 1), round(self.low * 100, 1), round(self.high * 100, 1)

    @property
    def minor(self) -> tuple[int, int, int]:
        """A revenue comparison in whole minor units: (estimate, low, high)."""
        return round(self.estimate), round(self.low), round(self.high)


def compare_conversion(
    *, converted: int, assigned: int, control_converted: int, control_assigned: int, alpha: float = 0.05
) -> Comparison | None:
    if assigned < 2 or control_assigned < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels also computes a ratio it does not return here
        low, high = confint_proportions_2indep(
            converted, assigned, control_converted, control_assigned, method="wald", compare="diff", alpha=alpha
        )
    estimate = converted / assigned - control_converted / control_assigned
    if converted + control_converted in (0, assigned + control_assigned):
        p_value = 1.0  # nobody (or everybody) converted: no evidence of any difference
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # the ratio it also computes (control at 0)
            result = test_proportions_2indep(
                converted, assigned, control_converted, control_assigned, method="wald", compare="diff"
            )
        p_value = float(result.pvalue)
    return Comparison(float(estimate), float(low), float(high), p_value, p_value < alpha)


def compare_revenue(values: Sequence[float], control: Sequence[float], *, alpha: float = 0.05) -> Comparison | None:
    a, b = np.asarray(values, dtype=float), np.asarray(control, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    estimate = float(a.mean() - b.mean())
    if a.var() == 0 and b.var() == 0:
        return Comparison(estimate, estimate, estimate, 1.0 if estimate == 0 else 0.0, estimate != 0)
    result = sps.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(confidence_level=1 - alpha)
    p_value = float(result.pvalue)
    return Comparison(estimate, float(ci.low), float(ci.high), p_value, p_value < alpha)


@dataclass(frozen=True)
class SampleRatio:
    observed: dict[str, int]
    expected_share: dict[str, float]
    p_value: float
    mismatch: bool


def sample_ratio_mismatch(observed: dict[str, int], shares: dict[str, float]) -> SampleRatio | None:
    """Chi-squared goodness of fit of the arm counts to the configured shares (which need not sum to 1)."""
    keys = [k for k in shares if shares[k] > 0]
    total = sum(observed.get(k, 0) for k in keys)
    if total == 0 or len(keys) < 2:
        return None
    weight = sum(shares[k] for k in keys)
    expected = [total * shares[k] / weight for k in keys]
    result = sps.chisquare([observed.get(k, 0) for k in keys], f_exp=expected)
    p_value = float(result.pvalue)
    return SampleRatio(
        {k: observed.get(k, 0) for k in keys}, {k: shares[k] / weight for k in keys}, p_value,
        p_value < SRM_P_THRESHOLD,
    )  # fmt: skip
