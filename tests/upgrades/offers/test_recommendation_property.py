"""Properties of the chooser (no database): plain candidates drawn by hypothesis.

- never an option that misses the projected need when a cheaper (or equal) one meets it;
- never an "upgrade" that takes something away: an account on a grandfathered plan is never offered
  less for more (or less for less);
- the segment only decides among equal prices.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.models import Price, Tier
from upgrades.offers.recommendation import Candidate, Ent, Need, Segment, changes_between, choose, is_upgrade
from upgrades.offers.recommendation.types import at_least

FEATURES = ("api_calls", "storage", "sso")

ent = st.one_of(
    st.just(Ent(False, 0)),
    st.builds(lambda n: Ent(True, n), st.integers(min_value=0, max_value=200)),
    st.just(Ent(True, None)),
)
ents = st.fixed_dictionaries({f: ent for f in FEATURES})


def candidate(i: int, held: dict, offered: dict, price: int, audience=None) -> Candidate:
    tier = Tier(key=f"t{i}", name=f"T{i}", rank=10 + i, version=1)
    return Candidate(
        kind="bundle" if audience else "tier",
        key=f"t{i}",
        tier=tier,
        addons=(),
        bundle=None,
        tier_price=Price(amount=price, interval="month"),
        addon_prices=(),
        changes=changes_between(held, offered),
        monthly_amount=price,
        entitlements=offered,
        audience=audience,
    )


needs_st = st.lists(
    st.one_of(
        st.builds(lambda f, q: Need(f, q), st.sampled_from(FEATURES[:2]), st.integers(min_value=1, max_value=200)),
        st.just(Need("sso", None, "unlock")),
    ),
    max_size=3,
)
options = st.lists(st.tuples(ents, st.integers(min_value=0, max_value=50_000)), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(held=ents, offered=options, needs=needs_st)
def test_never_an_option_that_misses_the_need_when_a_cheaper_one_meets_it(held, offered, needs):
    candidates = [candidate(i, held, e, p) for i, (e, p) in enumerate(offered)]
    choice = choose(candidates, needs)
    upgrades = [c for c in candidates if is_upgrade(c.changes)]
    if not upgrades:
        assert choice is None
        return
    fitting = [c for c in upgrades if all(n.met_by(c.entitlements) for n in needs)]
    if fitting:
        assert choice.meets_all
        assert all(n.met_by(choice.candidate.entitlements) for n in needs)
        assert choice.candidate.monthly_amount == min(c.monthly_amount for c in fitting)
    else:
        assert not choice.meets_all and choice.unmet


@settings(max_examples=300, deadline=None)
@given(held=ents, offered=options, needs=needs_st, held_price=st.integers(min_value=0, max_value=50_000))
def test_a_grandfathered_account_is_never_upgraded_to_less(held, offered, needs, held_price):
    # `held` plays a retired, cheaper version: whatever today's catalog costs, the chosen option keeps
    # everything the account has (each feature on where it was on, each limit at least as high).
    candidates = [candidate(i, held, e, p) for i, (e, p) in enumerate(offered)]
    choice = choose(candidates, needs)
    if choice is None:
        return
    chosen = choice.candidate
    assert all(at_least(chosen.entitlements[f], held[f]) for f in FEATURES)
    assert not chosen.changes["lost"]
    assert chosen.entitlements != held  # it adds something
    for alt in choice.alternatives:
        assert all(at_least(alt.entitlements[f], held[f]) for f in FEATURES)


@settings(max_examples=200, deadline=None)
@given(held=ents, offered=ents, price=st.integers(min_value=0, max_value=50_000))
def test_the_industry_bundle_wins_only_among_equal_prices(held, offered, price):
    plain = candidate(1, held, offered, price)
    bundle = candidate(2, held, offered, price, audience=("industry", "healthcare"))
    cheaper_plain = candidate(3, held, offered, max(0, price - 1))
    segment = Segment(industry="Healthcare")
    choice = choose([plain, bundle], [], segment=segment)
    if choice is None:
        assert not is_upgrade(plain.changes)
        return
    assert choice.candidate.key == "t2"
    if price > 0:
        assert choose([plain, bundle, cheaper_plain], [], segment=segment).candidate.key == "t3"


def test_costs_more_for_less_is_not_an_upgrade():
    held = {"api_calls": Ent(True, 100), "storage": Ent(True, 10), "sso": Ent(True, None)}
    less = {"api_calls": Ent(True, 500), "storage": Ent(True, 10), "sso": Ent(False, 0)}
    assert not is_upgrade(changes_between(held, less))
    lowered = {"api_calls": Ent(True, 500), "storage": Ent(True, 5), "sso": Ent(True, None)}
    assert not is_upgrade(changes_between(held, lowered))
    same = dict(held)
    assert not is_upgrade(changes_between(held, same))
    more = {"api_calls": Ent(True, None), "storage": Ent(True, 10), "sso": Ent(True, None)}
    assert changes_between(held, more) == {
        "gained": [],
        "lost": [],
        "limits": [{"feature": "api_calls", "from": 100, "to": None}],
    }
    assert is_upgrade(changes_between(held, more))
