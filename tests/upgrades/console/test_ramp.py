"""A proposal with a ramped multi-year term: the price path per year (hand-worked), approval when any year is
beyond policy, and the builder's validation of the per-year discounts.

Business annual 790.00 a seat. acct-1 (Team monthly, 3 seats) moving to annual starts a fresh period, the
term's first year: 2,370.00 a year, less 10 % / 12.5 % / 15 %: 2,133.00 now (prorated credit aside), then
renewals of 2,073.75 and 2,014.50. (A mid-period change, whose years run from the renewal, is walked through
Stripe in test_ramp_stripe.py.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.errors import InvalidInput
from accounts.models import Role
from upgrades.console.models import Proposal
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest

from .helpers import publish_policy

pytestmark = pytest.mark.django_db
RAMP = (Decimal("10"), Decimal("12.5"), Decimal("15"))


@pytest.fixture
def ramp_ws(workspace_a):
    publish_policy(workspace_a.world.tenant, term_rules=[{"years": 2, "percent": "10"}, {"years": 3, "percent": "15"}])
    return workspace_a


def build(ws, account_key, *, seats, year_percents=RAMP, second=False):
    options = [OptionRequest(tier="business", interval="year", seats=seats, term_years=3, year_percents=year_percents)]
    if second:
        options.append(OptionRequest(tier="business", interval="year", seats=seats, term_years=3))
    return services.build_proposal(
        ws.world.tenant, account=ws.accounts[account_key], actor=ws.world.staff[Role.CSM], options=options
    )


def test_a_fresh_three_year_ramp_prices_each_year_with_its_own_discount(ramp_ws):
    proposal = build(ramp_ws, "acct-1", seats=3, second=True)
    ramp, flat = proposal.options.order_by("position")
    rows = ramp.price_path
    assert [(r["kind"], r["year"], r["percent"]) for r in rows] == [
        ("today", 1, "10.00"),
        ("renewal", 2, "12.50"),
        ("renewal", 3, "15.00"),
    ]
    assert [r["amount"] for r in rows[1:]] == [207_375, 201_450]
    assert rows[0]["amount"] == ramp.quote["amount_due_now"]  # billing's own estimate of today's charge
    assert ramp.total_amount == sum(r["amount"] for r in rows)
    discount = ramp.option["discount"]
    assert discount["year_percents"] == ["10.00", "12.50", "15.00"] and discount["within_policy"] is True
    assert discount["explanation"].startswith("10 %, 12.5 %, 15 % in years 1 to 3")
    assert ramp.key == "business-year-3y-ramp-10-12.5-15" and flat.key == "business-year-3y"
    assert {r["amount"] for r in flat.price_path[1:]} == {201_450}  # the flat option: the policy's 15 % each year
    assert not proposal.approval_needed


def test_any_year_beyond_policy_routes_the_proposal_for_approval(ramp_ws):
    world = ramp_ws.world
    proposal = build(ramp_ws, "acct-1", seats=3, year_percents=(Decimal("10"), Decimal("15"), Decimal("20")))
    assert proposal.approval_needed and proposal.approver_role == Role.PRODUCT_MANAGER
    assert proposal.options.get().option["discount"]["within_policy"] is False
    services.submit_proposal(world.tenant, proposal=proposal, actor=world.staff[Role.CSM])
    assert proposal.state == "awaiting_approval"


@pytest.mark.parametrize(
    ("percents", "years"),
    [((Decimal("10"), Decimal("12")), 3), ((Decimal("10"), Decimal("100"), Decimal("5")), 3), ((Decimal("5"),), 1)],
)
def test_a_ramp_that_does_not_fit_the_term_is_refused(ramp_ws, percents, years):
    with pytest.raises(InvalidInput) as exc:
        services.build_proposal(
            ramp_ws.world.tenant,
            account=ramp_ws.accounts["acct-1"],
            actor=ramp_ws.world.staff[Role.CSM],
            options=[
                OptionRequest(tier="business", interval="year", seats=3, term_years=years, year_percents=percents)
            ],
        )
    assert "year_percents" in exc.value.details


BUILDER = {"kind": "upgrade", "tier": "business", "interval": "year", "seats": "3", "term_years": "3"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("10, 12", "each of the 3 years"),
        ("10, abc, 12", "separated by commas"),
        ("10, NaN, 12", "separated by commas"),
        ("10, 12, 100", "below 100"),
        ("10, 12.125, 15", "two decimals"),
    ],
)
def test_the_builder_answers_400_with_the_field_for_a_bad_ramp(ramp_ws, value, reason):
    account = ramp_ws.accounts["acct-1"]
    client = ramp_ws.world.staff_client(Role.CSM)
    response = client.post(f"/console/accounts/{account.pk}/proposals/new/", {**BUILDER, "year_percents": value})
    assert response.status_code == 400 and reason in response.content.decode()
    assert not Proposal.objects.filter(account=account).exists()


def test_the_builder_saves_a_ramp_and_the_page_shows_each_years_discount(ramp_ws):
    account = ramp_ws.accounts["acct-1"]
    client = ramp_ws.world.staff_client(Role.CSM)
    response = client.post(
        f"/console/accounts/{account.pk}/proposals/new/", {**BUILDER, "year_percents": "10, 12.5%, 15"}
    )
    assert response.status_code == 302
    proposal = Proposal.objects.get(account=account)
    assert proposal.options.get().option["discount"]["year_percents"] == ["10.00", "12.50", "15.00"]
    page = client.get(response["Location"]).content.decode()
    assert "Discount by year of the term" in page and "(12.5 %)" in page and "(15 %)" in page


def test_the_account_page_shows_a_ramped_terms_discount_by_year(ramp_ws):
    license = ramp_ws.licences["acct-1"]
    license.term_years, license.term_percents = 3, ["15.00", "12.50", "10.00"]
    license.renewal_discount_percent = Decimal("12.50")
    license.save()
    client = ramp_ws.world.staff_client(Role.ANALYST)
    page = client.get(f"/console/accounts/{ramp_ws.accounts['acct-1'].pk}/").content.decode()
    assert "year 1 15 %, year 2 12.5 %, year 3 10 %" in page and "3-year term" in page and "12.5 % off" in page
