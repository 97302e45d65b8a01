"""The value of an option: the live value model with the account's own numbers (conservative), inputs the
customer may change (validated), and similar customers' outcomes only from 5 measured accounts."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import CustomerAccount
from accounts.tenancy import tenant_context
from billing.models import LicenseChange
from catalog.models import Aggregation, Meter
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.pricing_helpers import EVIDENCE, licence, pricing_catalog, recommendation
from upgrades.offers.errors import InvalidInput
from upgrades.offers.pricing import compute_roi, price_offer
from upgrades.offers.pricing.similar import similar_outcomes
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db

VALUE_MODEL = [
    {"kind": "hours_saved", "meter": "api_calls", "hours_per_unit": "0.01", "hourly_cost": 6000, "label": "Support"},
    {"kind": "revenue_at_risk", "amount": 120000, "probability_percent": "5", "label": "Churn risk"},
    {"kind": "incidents_avoided", "per_month": "0.5", "cost_per_incident": 250000, "label": "Outages"},
]
OPTION = {"key": "business-month", "tier": "business", "monthly_equivalent": 29700, "monthly_change": 21000}


@pytest.fixture
def world(world_a):
    with tenant_context(world_a.tenant):
        settings_row = make_live_settings(world_a.tenant, value_model=VALUE_MODEL)
        yield SimpleNamespace(tenant=world_a.tenant, account=world_a.account, settings=settings_row)


def roi(world, *, evidence=EVIDENCE, option=OPTION, inputs=None):
    return compute_roi(
        world.tenant, account=world.account, settings=world.settings, evidence=evidence, option=option, inputs=inputs
    )


def test_every_driver_with_the_accounts_own_numbers_at_the_lower_bound(world):
    result = roi(world)
    support, churn, outages = result["drivers"]
    # 9,200 calls used (fewer than the 14,000 projected) x 0.01 h = 92 h x 60.00 = 5,520.00 a month.
    assert support["value"] == 552000 and support["inputs"]["units_per_month"] == 9200
    assert (
        support["formula"] == "9,200 units a month × 0.01 hours each = 92 hours, × $60.00 an hour = $5,520.00 a month"
    )
    assert churn["value"] == 6000  # 5 % of 1,200.00
    assert outages["value"] == 125000  # 0.5 x 2,500.00
    assert result["monthly_value"] == 683000
    assert result["monthly_cost_increase"] == 21000
    assert result["roi_ratio"] == "32.52"  # 683,000 / 21,000 = 32.5238
    assert result["payback_days"] == 1  # 21,000 / 683,000 x 365/12 = 0.94 days, rounded up
    assert any("not the projected growth" in a for a in result["assumptions"])
    assert set(result["inputs"]) == {"hours_saved", "revenue_at_risk", "incidents_avoided"}
    assert result["similar"] is None  # nobody to compare with


def test_a_projection_below_use_is_the_lower_bound_and_use_is_never_scaled_up(world):
    low = {"meters": [{**EVIDENCE["meters"][0], "used": 9200, "projected": 5000}]}
    assert roi(world, evidence=low)["drivers"][0]["inputs"]["units_per_month"] == 5000
    early = {"meters": [{**EVIDENCE["meters"][0], "used": 1000, "projected": 14000, "window_days": 7}]}
    assert roi(world, evidence=early)["drivers"][0]["inputs"]["units_per_month"] == 1000


def test_a_meter_without_measured_use_counts_nothing_and_says_so(world):
    result = roi(world, evidence={"meters": []})
    assert result["drivers"][0]["value"] == 0
    assert any("No use of api_calls was measured" in a for a in result["assumptions"])


def test_the_customers_own_inputs_replace_the_assumptions(world):
    result = roi(world, inputs={"hours_saved": {"units_per_month": 20000, "hourly_cost": "7500"}})
    support = result["drivers"][0]
    # 20,000 x 0.01 = 200 h x 75.00 = 15,000.00.
    assert support["value"] == 1500000
    assert support["overridden"] == ["hourly_cost", "units_per_month"]
    assert result["monthly_value"] == 1500000 + 6000 + 125000
    assert result["inputs"]["hours_saved"]["hourly_cost"] == 7500
    decimal = roi(world, inputs={"incidents_avoided": {"per_month": 0.25}})["drivers"][2]
    assert decimal["value"] == 62500 and decimal["inputs"]["per_month"] == "0.25"


@pytest.mark.parametrize(
    ("inputs", "field", "reason"),
    [
        ({"nope": {}}, "inputs.nope", "No driver 'nope'"),
        ({"hours_saved": {"colour": 1}}, "inputs.hours_saved.colour", "Not an input of this driver"),
        ({"hours_saved": {"hourly_cost": -1}}, "inputs.hours_saved.hourly_cost", "From 0 to"),
        ({"hours_saved": {"hourly_cost": "75.5"}}, "inputs.hours_saved.hourly_cost", "A whole number"),
        ({"hours_saved": {"hours_per_unit": "abc"}}, "inputs.hours_saved.hours_per_unit", "A number."),
        ({"hours_saved": {"hours_per_unit": True}}, "inputs.hours_saved.hours_per_unit", "A number."),
        ({"hours_saved": {"hours_per_unit": float("nan")}}, "inputs.hours_saved.hours_per_unit", "A number."),
        ({"revenue_at_risk": {"probability_percent": "101"}}, "inputs.revenue_at_risk.probability_percent", "From 0"),
        ({"revenue_at_risk": []}, "inputs.revenue_at_risk", "An object of inputs."),
        (["x"], "inputs", "An object of drivers."),
    ],
)
def test_bad_inputs_are_refused_with_field_and_reason(world, inputs, field, reason):
    with pytest.raises(InvalidInput) as err:
        roi(world, inputs=inputs)
    assert any(reason in r for r in err.value.details[field])


def test_no_cost_increase_pays_back_at_once_and_no_value_never(world):
    cheaper = roi(world, option={**OPTION, "monthly_change": -500})
    assert (cheaper["payback_days"], cheaper["roi_ratio"]) == (0, None)
    nothing = roi(world, inputs={"hours_saved": {"units_per_month": 0}, "revenue_at_risk": {"amount": 0},
                                 "incidents_avoided": {"per_month": 0}})  # fmt: skip
    assert (nothing["monthly_value"], nothing["payback_days"], nothing["roi_ratio"]) == (0, None, "0.00")


def test_price_offer_carries_the_roi_of_the_recommended_option(world):
    catalog = pricing_catalog(world.tenant)
    lic = licence(
        world.account,
        catalog.prices["team-month"],
        start=timezone.now() - datetime.timedelta(days=3),
        end=timezone.now() + datetime.timedelta(days=27),
    )
    pricing = price_offer(world.tenant, license=lic, recommendation=recommendation(catalog), settings=world.settings)
    assert pricing.roi["monthly_cost_increase"] == 29700 - 8700
    assert pricing.roi["monthly_value"] == 683000


# --- similar customers ---------------------------------------------------------------------------


@pytest.fixture
def meter(world):
    return Meter.objects.create(
        tenant=world.tenant, key="api_calls", name="API calls", event_name="api_call", aggregation=Aggregation.COUNT
    )


def upgraded_peer(world, meter, n: int, *, before: int, after: int, industry="software", days_ago=40):
    peer = CustomerAccount.objects.create(
        tenant=world.tenant, external_id=f"peer-{n}-{industry}-{days_ago}", name=f"Peer {n}", industry=industry,
        size_band="11-50",
    )  # fmt: skip
    when = timezone.now() - datetime.timedelta(days=days_ago)
    LicenseChange.objects.create(
        tenant=world.tenant, account=peer, kind="upgrade", actor_label="test", mrr_before=8700, mrr_after=29700,
        to_state={"tier": "business"}, effective_at=when,
    )  # fmt: skip
    day = when.date()
    UsageRollup.objects.create(tenant=world.tenant, account=peer, meter=meter, day=day - datetime.timedelta(days=5),
                               value=before)  # fmt: skip
    UsageRollup.objects.create(tenant=world.tenant, account=peer, meter=meter, day=day + datetime.timedelta(days=5),
                               value=after)  # fmt: skip
    return peer


def similar(world):
    return similar_outcomes(world.tenant, account=world.account, settings=world.settings, evidence=EVIDENCE,
                            option=OPTION)  # fmt: skip


def test_similar_customers_are_shown_only_from_five_measured_accounts(world, meter):
    for n, after in enumerate([1100, 1200, 1300, 1400]):
        upgraded_peer(world, meter, n, before=1000, after=after)
    # Not like this account, not measured yet, or nothing before: never counted.
    upgraded_peer(world, meter, 10, before=1000, after=5000, industry="retail")
    upgraded_peer(world, meter, 11, before=1000, after=5000, days_ago=10)
    upgraded_peer(world, meter, 12, before=0, after=5000)
    assert similar(world) is None  # four accounts: nothing shown, nothing invented
    assert roi(world)["similar"] is None

    upgraded_peer(world, meter, 4, before=1000, after=1500)
    found = similar(world)
    assert found["accounts"] == 5
    assert found["median_change_percent"] == "30.00"  # +10, +20, +30, +40, +50 %: the median
    assert (found["grew"], found["same_tier"], found["window_days"]) == (5, 5, 30)
    assert "rose by a median of 30 %" in found["sentence"]


def test_similar_customers_need_more_when_the_settings_ask_for_more(world, meter):
    for n in range(5):
        upgraded_peer(world, meter, n, before=1000, after=1200)
    world.settings.similar_min_accounts = 6
    assert similar(world) is None


def test_similar_customers_take_a_constant_number_of_queries(world, meter):
    for n in range(5):
        upgraded_peer(world, meter, n, before=1000, after=1200)
    with CaptureQueriesContext(connection) as five:
        assert similar(world)["accounts"] == 5
    for n in range(5, 15):
        upgraded_peer(world, meter, n, before=1000, after=1200)
    with CaptureQueriesContext(connection) as fifteen:
        assert similar(world)["accounts"] == 15
    assert len(five) == len(fifteen) == 3


def test_another_tenants_customers_are_never_similar(world, meter, world_b):
    with tenant_context(world_b.tenant):
        other = SimpleNamespace(tenant=world_b.tenant)
        other_meter = Meter.objects.create(
            tenant=world_b.tenant, key="api_calls", name="API calls", event_name="api_call"
        )
        for n in range(6):
            upgraded_peer(other, other_meter, n, before=1000, after=2000)
    for n in range(4):
        upgraded_peer(world, meter, n, before=1000, after=1200)
    assert similar(world) is None
