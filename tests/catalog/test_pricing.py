"""catalog.pricing: hand-worked savings and discounts, and properties that hold for every input.

Boundaries are tested on both sides (a customer with exactly 50 seats is in the 50-199
bracket; exactly 2 years gets the 2-year rule and, at renewal, loyalty), refusals by their
exact message (it is what a product manager reads in the admin), and explanations in full
(they are what a customer reads on a quote).
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.pricing import (
    Discount,
    TermRule,
    VolumeRule,
    annual_saving,
    apply_percent,
    basis_to_percent,
    describe_policy,
    discount_for,
    discount_on_lines,
    effective_monthly,
    parse_term_rules,
    parse_volume_rules,
    percent_of,
    percent_to_basis,
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


# --- Exact refusals, boundaries and explanations ---------------------------------------------


def refused(message: str, error: type[Exception] = ValueError):
    """The refusal, word for word (a test that matched a fragment would pass on a garbled message)."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


def test_round_half_up_handles_negative_denominators_and_refuses_zero():
    assert round_half_up(5, -2) == -3  # -2.5 -> -3, away from zero
    assert round_half_up(-5, -2) == 3
    assert round_half_up(-7, 2) == -4
    assert round_half_up(-6, 4) == -2  # -1.5 -> -2
    assert round_half_up(0, 7) == 0
    assert (round_half_up(1, 3), round_half_up(2, 3), round_half_up(6, 3)) == (0, 1, 2)
    assert round_half_up(7) == 7  # the denominator defaults to 1
    with refused("denominator must not be 0", ZeroDivisionError):
        round_half_up(1, 0)


def test_percentages_are_hundredths_rounded_half_up_and_non_numbers_are_refused():
    assert percent_to_basis("12.5") == 1_250
    assert percent_to_basis(Decimal("12.345")) == 1_235  # half up, not half even
    assert percent_to_basis("12.344") == 1_234
    assert percent_to_basis(7) == 700
    assert percent_to_basis("0") == 0
    for bad, shown in [
        ("abc", "'abc'"),
        ("NaN", "'NaN'"),
        (Decimal("Infinity"), "Decimal('Infinity')"),
        (None, "None"),
    ]:
        with refused(f"{shown} is not a percentage"):
            percent_to_basis(bad)
    # Shown with exactly two places.
    assert [str(basis_to_percent(b)) for b in (1_250, 5, 10_000, 0)] == ["12.50", "0.05", "100.00", "0.00"]


def test_apply_percent_takes_the_share_of_an_amount_rounded_once_half_up():
    assert apply_percent(10_000, Decimal("12.5")) == 1_250
    assert apply_percent(999, Decimal("33.33")) == 333  # 332.9667
    assert apply_percent(1, Decimal("50")) == 1  # 0.5 -> 1
    assert apply_percent(2, Decimal("24.99")) == 0  # 0.4998 -> 0
    assert apply_percent(12_345, Decimal("0")) == 0


def test_per_seat_helpers_accept_one_seat_and_refuse_none():
    assert price_per_seat(amount=2_900, seats=1, per_seat=False) == 2_900
    assert price_per_seat(amount=10_001, seats=2, per_seat=False) == 5_001  # 5,000.5 -> 5,001
    assert total_for_seats(amount=2_900, seats=1, per_seat=True) == 2_900
    with refused("seats must be at least 1"):
        price_per_seat(amount=2_900, seats=0, per_seat=True)
    with refused("seats must be at least 1"):
        total_for_seats(amount=2_900, seats=0, per_seat=False)


def test_term_rules_entered_out_of_order_are_sorted_and_the_bounds_are_allowed():
    rules = [{"years": 3, "percent": "15"}, {"years": 1, "percent": 0}, {"years": "2", "percent": "7.5"}]
    assert parse_term_rules(rules) == [TermRule(1, 0), TermRule(2, 750), TermRule(3, 1_500)]
    assert parse_term_rules([{"years": 10, "percent": 100}, {"years": 1, "percent": 0}]) == [
        TermRule(1, 0),
        TermRule(10, 10_000),
    ]
    assert parse_term_rules(None) == [] and parse_term_rules([]) == []


NEEDS_YEARS = "needs whole 'years' and a 'percent'."


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"percent": 5}], f"Term rule 1: {NEEDS_YEARS}"),
        ([{"years": 2, "percent": 5}, {"years": 3}], f"Term rule 2: {NEEDS_YEARS}"),
        ([{"years": "two", "percent": 5}], f"Term rule 1: {NEEDS_YEARS}"),
        ([{"years": None, "percent": 5}], f"Term rule 1: {NEEDS_YEARS}"),
        ([{"years": 2, "percent": "lots"}], f"Term rule 1: {NEEDS_YEARS}"),
        ([None], f"Term rule 1: {NEEDS_YEARS}"),
        ([{"years": 0, "percent": 5}], "Term rule 1: years must be between 1 and 10."),
        ([{"years": 2, "percent": 5}, {"years": 11, "percent": 5}], "Term rule 2: years must be between 1 and 10."),
        ([{"years": 2, "percent": "-0.01"}], "Term rule 1: percent must be between 0 and 100."),
        (
            [{"years": 1, "percent": 1}, {"years": 2, "percent": "100.01"}],
            "Term rule 2: percent must be between 0 and 100.",
        ),
        ([{"years": 2, "percent": 5}, {"years": 2, "percent": 6}], "Term rules: each number of years may appear once."),
    ],
)
def test_bad_term_rules_are_refused_naming_the_rule_and_the_problem(rules, message):
    with refused(message):
        parse_term_rules(rules)
    with refused(message):  # a policy holding them is refused too, never read half-way
        discount_for(Policy(term_rules=rules), term_years=2, seats=1)


def test_volume_rules_entered_out_of_order_are_sorted_and_brackets_may_touch():
    rules = [
        {"min_seats": 200, "max_seats": None, "percent": "12.5"},
        {"min_seats": 1, "max_seats": 49, "percent": 0},
        {"min_seats": "50", "max_seats": "199", "percent": 5},
    ]
    assert parse_volume_rules(rules) == [VolumeRule(1, 49, 0), VolumeRule(50, 199, 500), VolumeRule(200, None, 1_250)]
    # No upper bound: missing, None or blank (as the admin form sends it).
    assert parse_volume_rules([{"min_seats": 1, "max_seats": "", "percent": 1}]) == [VolumeRule(1, None, 100)]
    assert parse_volume_rules([{"min_seats": 1, "percent": 1}]) == [VolumeRule(1, None, 100)]
    # A one-seat bracket, and brackets at the percentage bounds.
    assert parse_volume_rules(
        [{"min_seats": 2, "max_seats": None, "percent": 100}, {"min_seats": 1, "max_seats": 1, "percent": 0}]
    ) == [VolumeRule(1, 1, 0), VolumeRule(2, None, 10_000)]
    assert parse_volume_rules(None) == []


NEEDS_SEATS = "needs whole 'min_seats', optional 'max_seats', and a 'percent'."


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"max_seats": 5, "percent": 1}], f"Volume rule 1: {NEEDS_SEATS}"),
        (
            [{"min_seats": 1, "max_seats": 9, "percent": 1}, {"min_seats": "ten", "percent": 1}],
            f"Volume rule 2: {NEEDS_SEATS}",
        ),
        ([{"min_seats": 1, "max_seats": "lots", "percent": 1}], f"Volume rule 1: {NEEDS_SEATS}"),
        ([{"min_seats": 1, "percent": "x"}], f"Volume rule 1: {NEEDS_SEATS}"),
        ([{"min_seats": 1}], f"Volume rule 1: {NEEDS_SEATS}"),
        ([[1, 50]], f"Volume rule 1: {NEEDS_SEATS}"),
        ([{"min_seats": 0, "percent": 1}], "Volume rule 1: seats must run from at least 1 upwards."),
        (
            [{"min_seats": 1, "max_seats": 9, "percent": 1}, {"min_seats": 20, "max_seats": 19, "percent": 1}],
            "Volume rule 2: seats must run from at least 1 upwards.",
        ),
        ([{"min_seats": 1, "percent": "-1"}], "Volume rule 1: percent must be between 0 and 100."),
        ([{"min_seats": 1, "percent": "100.5"}], "Volume rule 1: percent must be between 0 and 100."),
        (
            [{"min_seats": 1, "max_seats": None, "percent": 1}, {"min_seats": 50, "percent": 2}],
            "Volume rules: the brackets starting at 1 and 50 seats overlap.",
        ),
        (  # out of order, and sharing seat 50
            [{"min_seats": 50, "max_seats": 100, "percent": 1}, {"min_seats": 1, "max_seats": 50, "percent": 2}],
            "Volume rules: the brackets starting at 1 and 50 seats overlap.",
        ),
    ],
)
def test_bad_volume_rules_are_refused_naming_the_rule_and_the_problem(rules, message):
    with refused(message):
        parse_volume_rules(rules)
    with refused(message):
        discount_for(Policy(volume_rules=rules), term_years=1, seats=60)


@pytest.mark.parametrize(
    ("seats", "percent", "explanation"),
    [
        (49, "0", "No discount: the policy has no rule for 1 year(s) and 49 seat(s)."),
        (50, "5", "5 % for 50 seats (50–199 seat bracket)."),
        (199, "5", "5 % for 199 seats (50–199 seat bracket)."),
        (200, "12.5", "12.5 % for 200 seats (200+ seat bracket)."),
        (10_000, "12.5", "12.5 % for 10000 seats (200+ seat bracket)."),
    ],
)
def test_a_customer_at_a_brackets_first_or_last_seat_gets_that_brackets_discount(seats, percent, explanation):
    d = discount_for(Policy(), term_years=1, seats=seats, list_amount=10_000)
    assert d.volume_percent == Decimal(percent) and d.percent == Decimal(percent)
    assert d.term_percent == 0 and d.loyalty_percent == 0 and not d.capped
    assert d.amount == int(Decimal(percent) * 100)
    assert d.explanation == explanation


def test_exactly_two_years_gets_the_two_year_rule_and_loyalty_only_at_renewal():
    loyal = Policy(loyalty_percent=Decimal("3"))
    renewal = discount_for(loyal, term_years=2, seats=1, list_amount=10_000, is_renewal=True)
    assert renewal == Discount(
        percent=Decimal("13.00"),
        amount=1_300,
        explanation=(
            "10 % for a 2-year commitment; 3 % loyalty for renewing on a multi-year term; combined (added): 13 %."
        ),
        term_percent=Decimal("10.00"),
        volume_percent=Decimal("0.00"),
        loyalty_percent=Decimal("3.00"),
        capped=False,
    )
    new_deal = discount_for(loyal, term_years=2, seats=1, list_amount=10_000)
    assert (new_deal.percent, new_deal.loyalty_percent) == (Decimal("10.00"), 0)
    assert new_deal.explanation == "10 % for a 2-year commitment."
    assert discount_for(loyal, term_years=3, seats=1).loyalty_percent == 0  # a new 3-year deal: no loyalty


def test_term_rules_entered_out_of_order_still_pick_the_longest_rule_not_above_the_term():
    shuffled = Policy(
        term_rules=[{"years": 3, "percent": "15"}, {"years": 1, "percent": "0"}, {"years": 2, "percent": "10"}],
        volume_rules=[
            {"min_seats": 200, "max_seats": None, "percent": "12.5"},
            {"min_seats": 50, "max_seats": 199, "percent": "5"},
            {"min_seats": 1, "max_seats": 49, "percent": "0"},
        ],
    )
    for years, ordered in [(1, "0"), (2, "10"), (3, "15"), (4, "15")]:
        assert discount_for(shuffled, term_years=years, seats=1).term_percent == Decimal(ordered)
    assert (
        discount_for(shuffled, term_years=4, seats=1).explanation == "15 % for a 4-year commitment (the 3-year rule)."
    )
    assert discount_for(shuffled, term_years=1, seats=50).volume_percent == Decimal("5")
    assert discount_for(shuffled, term_years=1, seats=200).volume_percent == Decimal("12.5")


def test_a_term_shorter_than_every_rule_gets_no_term_discount():
    d = discount_for(Policy(term_rules=[{"years": 2, "percent": "10"}], volume_rules=[]), term_years=1, seats=1)
    assert d.percent == 0 and d.term_percent == 0
    assert d.explanation == "No discount: the policy has no rule for 1 year(s) and 1 seat(s)."


def test_the_cap_applies_only_above_it_and_says_so():
    at_cap = discount_for(Policy(cap_percent=Decimal("20")), term_years=3, seats=50, list_amount=10_000)
    assert (at_cap.percent, at_cap.amount, at_cap.capped) == (Decimal("20.00"), 2_000, False)
    assert (
        at_cap.explanation
        == "15 % for a 3-year commitment; 5 % for 50 seats (50–199 seat bracket); combined (added): 20 %."
    )
    above = discount_for(Policy(cap_percent=Decimal("19.99")), term_years=3, seats=50, list_amount=10_000)
    assert (above.percent, above.amount, above.capped) == (Decimal("19.99"), 1_999, True)
    assert above.explanation == (
        "15 % for a 3-year commitment; 5 % for 50 seats (50–199 seat bracket); combined (added): 20 %; "
        "capped at the policy maximum of 19.99 %."
    )
    assert (above.term_percent, above.volume_percent) == (Decimal("15"), Decimal("5"))  # the parts stay as they were


def test_a_policy_without_cap_or_loyalty_never_exceeds_100_percent_and_adds_no_loyalty():
    generous = Policy(
        term_rules=[{"years": 1, "percent": "60"}],
        volume_rules=[{"min_seats": 1, "percent": "50"}],
        cap_percent=None,
        loyalty_percent=None,
    )
    d = discount_for(generous, term_years=2, seats=1, list_amount=4_321, is_renewal=True)
    assert (d.percent, d.amount, d.capped, d.loyalty_percent) == (Decimal("100.00"), 4_321, True, 0)
    assert d.explanation == (
        "60 % for a 2-year commitment (the 1-year rule); 50 % for 1 seats (1+ seat bracket); "
        "combined (added): 110 %; capped at the policy maximum of 100 %."
    )


@pytest.mark.parametrize(
    ("combination", "words", "percent"),
    [
        ("add", "added", "27.5"),
        (None, "added", "27.5"),  # no combination set: add
        ("", "added", "27.5"),
        ("unheard-of", "added", "27.5"),  # an unknown way is treated (and explained) as add
        ("compound", "applied one after the other", "25.63"),
        ("best", "the larger one taken", "15"),
    ],
)
def test_each_way_of_combining_is_named_in_the_explanation(combination, words, percent):
    d = discount_for(Policy(combination=combination, cap_percent=Decimal(100)), term_years=3, seats=500)
    assert d.percent == Decimal(percent)
    assert d.explanation == (
        f"15 % for a 3-year commitment; 12.5 % for 500 seats (200+ seat bracket); combined ({words}): {percent} %."
    )


def test_compounding_one_two_or_three_parts_hand_worked():
    compound = Policy(combination="compound", cap_percent=Decimal(100), loyalty_percent=Decimal("3"))
    assert discount_for(compound, term_years=3, seats=1).percent == Decimal("15.00")  # one part: itself
    assert discount_for(compound, term_years=2, seats=50).percent == Decimal("14.50")  # 1 - 0.9 x 0.95
    # 1 - 0.85 x 0.875 x 0.97 = 1 - 0.7214375 = 27.85625 % -> 27.86 %
    assert discount_for(compound, term_years=3, seats=200, is_renewal=True).percent == Decimal("27.86")
    # No part applies: nothing, however the parts combine.
    for how in ("compound", "best", "add"):
        assert discount_for(Policy(combination=how), term_years=1, seats=5).percent == Decimal("0.00")


def test_discount_for_refuses_impossible_commitments_word_for_word():
    with refused("term_years must be at least 1"):
        discount_for(Policy(), term_years=0, seats=1)
    with refused("seats must be at least 1"):
        discount_for(Policy(), term_years=1, seats=0)
    with refused("list_amount must not be negative"):
        discount_for(Policy(), term_years=1, seats=1, list_amount=-1)
    assert discount_for(Policy(), term_years=2, seats=1, list_amount=0).amount == 0
    assert discount_for(Policy(), term_years=2, seats=1).amount == 0  # no list amount: a percentage only
    assert discount_for(None, term_years=3, seats=10, list_amount=5_000) == Discount(
        percent=Decimal("0.00"), amount=0, explanation="No discount policy applies."
    )


def test_describe_policy_is_empty_without_a_policy_or_any_non_zero_rule():
    assert describe_policy(None) == ""
    zeros = Policy(term_rules=[{"years": 1, "percent": "0"}], volume_rules=[{"min_seats": 1, "percent": "0"}])
    assert describe_policy(zeros) == ""
    shuffled = Policy(
        term_rules=[{"years": 3, "percent": "15"}, {"years": 2, "percent": "10"}],
        volume_rules=[{"min_seats": 200, "percent": "12.5"}, {"min_seats": 50, "max_seats": 199, "percent": "5"}],
        cap_percent=Decimal("19.99"),
    )
    assert describe_policy(shuffled) == (
        "2-year commitment: 10 % off. 3-year commitment: 15 % off. 50–199 seats: 5 % off. "
        "200+ seats: 12.5 % off. Never more than 19.99 % in total."
    )


def test_a_discount_on_several_lines_is_each_lines_share_rounded_then_added():
    # Stripe discounts each invoice line: 12.5 % of 297.00 and of 5.00 round up on their own (37.13 + 0.63).
    assert discount_on_lines([29_700, 500], Decimal("12.5")) == 3_776
    assert apply_percent(30_200, Decimal("12.5")) == 3_775  # once on the sum: a unit less
    # a credit line rounds away from zero like a charge; no lines, nothing off
    assert discount_on_lines([-29_700, 500], Decimal("12.5")) == -3_713 + 63
    assert discount_on_lines([], Decimal("50")) == 0
