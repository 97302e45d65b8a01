"""catalog.pricing: hand-worked savings and discounts, and properties that hold for every input."""

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.pricing import (
    annual_saving,
    describe_policy,
    discount_for,
    effective_monthly,
    parse_volume_rules,
    percent_of,
    price_per_seat,
    round_half_up,
    total_for_seats,
)


@dataclass
class Policy:
    term_rules: list = field(
        default_factory=lambda: [
            {"years": 1, "percent": "0"},
            {"years": 2, "percent": "10"},
            {"years": 3, "percent": "15"},
        ]
    )
    volume_rules: list = field(
        default_factory=lambda: [
            {"min_seats": 1, "max_seats": 49, "percent": "0"},
            {"min_seats": 50, "max_seats": 199, "percent": "5"},
            {"min_seats": 200, "max_seats": None, "percent": "12.5"},
        ]
    )
    combination: str = "add"
    cap_percent: Decimal = Decimal("25")
    loyalty_percent: Decimal = Decimal("0")


def test_round_half_up_rounds_halves_away_from_zero_on_integers():
    assert round_half_up(5, 2) == 3
    assert round_half_up(7, 2) == 4
    assert round_half_up(-5, 2) == -3
    assert round_half_up(29_000, 12) == 2_417  # 2416.67
    assert round_half_up(14, 4) == 4  # 3.5 -> 4
    assert round_half_up(13, 4) == 3  # 3.25 -> 3


def test_annual_saving_against_twelve_monthly_payments_hand_worked():
    # $29/month -> $348 a year; annual $290 saves $58 = 58/348 = 16.666..% -> 16.67 %.
    saving = annual_saving(monthly_amount=2_900, annual_amount=29_000)
    assert saving.amount == 5_800
    assert saving.percent == Decimal("16.67")
    # $10/month, $100/year: 120 - 100 = 20 -> 16.67 %; $12.50/month, $120/year: 150 - 120 = 30 -> 20 %.
    assert annual_saving(monthly_amount=1_250, annual_amount=12_000).percent == Decimal("20.00")
    # An annual plan at exactly 12 x monthly saves nothing; above it the saving is negative.
    assert annual_saving(monthly_amount=1_000, annual_amount=12_000).amount == 0
    assert annual_saving(monthly_amount=1_000, annual_amount=12_100).amount == -100


def test_effective_monthly_and_per_seat_prices_hand_worked():
    assert effective_monthly(29_000) == 2_417  # 290 / 12 = 24.1666 -> 24.17
    assert effective_monthly(79_000) == 6_583  # 790 / 12 = 65.8333 -> 65.83
    assert price_per_seat(amount=2_900, seats=10, per_seat=True) == 2_900
    assert price_per_seat(amount=10_000, seats=3, per_seat=False) == 3_333
    assert total_for_seats(amount=2_900, seats=10, per_seat=True) == 29_000
    assert total_for_seats(amount=10_000, seats=3, per_seat=False) == 10_000
    assert percent_of(1, 3) == Decimal("33.33")
    assert percent_of(2, 3) == Decimal("66.67")
    assert percent_of(5, 0) == Decimal("0.00")


def test_discount_adds_term_and_volume_and_explains_both():
    d = discount_for(Policy(), term_years=2, seats=60, list_amount=100_000)
    assert d.percent == Decimal("15.00")
    assert d.amount == 15_000
    assert d.term_percent == Decimal("10.00") and d.volume_percent == Decimal("5.00")
    assert "10 % for a 2-year commitment" in d.explanation
    assert "5 % for 60 seats (50–199 seat bracket)" in d.explanation
    assert not d.capped


def test_discount_is_capped_and_says_so():
    # 15 % (3 years) + 12.5 % (200+ seats) = 27.5 %, capped at 25 %.
    d = discount_for(Policy(), term_years=3, seats=500, list_amount=123_457)
    assert d.percent == Decimal("25.00")
    assert d.capped
    assert d.amount == 30_864  # 123,457 x 0.25 = 30,864.25 -> 30,864
    assert "capped at the policy maximum of 25 %" in d.explanation


def test_compound_and_best_combinations_hand_worked():
    compound = discount_for(Policy(combination="compound", cap_percent=Decimal(100)), term_years=3, seats=500)
    # 1 - (0.85 x 0.875) = 1 - 0.74375 = 25.625 % -> 25.63 %
    assert compound.percent == Decimal("25.63")
    best = discount_for(Policy(combination="best"), term_years=3, seats=500)
    assert best.percent == Decimal("15.00")


def test_longer_terms_get_the_longest_rule_not_above_them_and_renewals_add_loyalty():
    d = discount_for(Policy(loyalty_percent=Decimal("3")), term_years=5, seats=1, is_renewal=True)
    assert d.term_percent == Decimal("15.00")
    assert d.loyalty_percent == Decimal("3.00")
    assert d.percent == Decimal("18.00")
    assert "(the 3-year rule)" in d.explanation
    assert discount_for(Policy(loyalty_percent=Decimal("3")), term_years=1, seats=1, is_renewal=True).percent == 0


def test_no_policy_or_no_matching_rule_means_no_discount_with_a_reason():
    assert discount_for(None, term_years=3, seats=10).percent == 0
    d = discount_for(Policy(), term_years=1, seats=5, list_amount=10_000)
    assert d.percent == 0 and d.amount == 0
    assert d.explanation.startswith("No discount")


def test_bad_inputs_are_refused_with_reasons():
    with pytest.raises(ValueError, match="seats"):
        discount_for(Policy(), term_years=1, seats=0)
    with pytest.raises(ValueError, match="overlap"):
        parse_volume_rules(
            [{"min_seats": 1, "max_seats": 50, "percent": 1}, {"min_seats": 50, "max_seats": None, "percent": 2}]
        )
    with pytest.raises(ValueError, match="between 0 and 100"):
        discount_for(Policy(term_rules=[{"years": 2, "percent": "120"}]), term_years=2, seats=1)


def test_describe_policy_reads_like_a_sentence():
    text = describe_policy(Policy())
    assert text == (
        "2-year commitment: 10 % off. 3-year commitment: 15 % off. 50–199 seats: 5 % off. "
        "200+ seats: 12.5 % off. Never more than 25 % in total."
    )


percents = st.decimals(min_value=0, max_value=100, places=2)
term_rule_lists = st.lists(st.tuples(st.integers(1, 10), percents), max_size=4, unique_by=lambda r: r[0])


@st.composite
def policies(draw):
    terms = [{"years": y, "percent": str(p)} for y, p in draw(term_rule_lists)]
    bounds = sorted(draw(st.sets(st.integers(1, 5_000), max_size=4)))
    volume = []
    for i, low in enumerate(bounds):
        high = bounds[i + 1] - 1 if i + 1 < len(bounds) else draw(st.one_of(st.none(), st.integers(low, 10_000)))
        volume.append({"min_seats": low, "max_seats": high, "percent": str(draw(percents))})
    return Policy(
        term_rules=terms,
        volume_rules=volume,
        combination=draw(st.sampled_from(["add", "compound", "best"])),
        cap_percent=draw(percents),
        loyalty_percent=draw(percents),
    )


@given(
    policy=policies(),
    term=st.integers(1, 12),
    seats=st.integers(1, 20_000),
    amount=st.integers(0, 10**12),
    renewal=st.booleans(),
)
def test_discount_is_deterministic_capped_and_never_exceeds_the_list_amount(policy, term, seats, amount, renewal):
    first = discount_for(policy, term_years=term, seats=seats, list_amount=amount, is_renewal=renewal)
    again = discount_for(policy, term_years=term, seats=seats, list_amount=amount, is_renewal=renewal)
    assert first == again
    assert Decimal(0) <= first.percent <= policy.cap_percent
    assert 0 <= first.amount <= amount
    assert first.percent == first.percent.quantize(Decimal("0.01"))
    # The amount is the percentage of the list amount, rounded once, half-up.
    assert first.amount == round_half_up(amount * int(first.percent * 100), 10_000)


@given(monthly=st.integers(0, 10**9), annual=st.integers(0, 12 * 10**9))
def test_saving_amount_is_exact_and_percent_is_its_rounded_share(monthly, annual):
    saving = annual_saving(monthly_amount=monthly, annual_amount=annual)
    assert saving.amount == 12 * monthly - annual
    if monthly:
        assert abs(saving.percent - Decimal(saving.amount * 100) / Decimal(12 * monthly)) <= Decimal("0.005")
