"""The stand-in's subscription schedules, driven with the official `stripe` library as billing drives Stripe:
a schedule made from a subscription, a multi-year ramp of coupons entered renewal by renewal (and previewed
as it will be invoiced), release, cancel, and the updates Stripe (or the stand-in) refuses."""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
import requests
import stripe

pytestmark = [pytest.mark.integration]

CARD = "4242424242424242"


@dataclass
class Account:
    key: str
    client: stripe.StripeClient
    customer: str
    prices: dict[str, str]


def open_account(standin, key: str) -> Account:
    """A Stripe account (one secret key) with a customer paying by card, three prices and ramp coupons."""
    client = stripe.StripeClient(key, base_addresses={"api": standin.url})
    customer = client.v1.customers.create({"email": "buyer@customer.test"}).id
    standin.set_card(customer, CARD)
    product = client.v1.products.create({"name": "Team"}).id
    prices = {
        name: client.v1.prices.create(
            {"product": product, "unit_amount": amount, "currency": "usd", "recurring": {"interval": interval}}
        ).id
        for name, amount, interval in (
            ("seat", 50_005, "year"),
            ("addon", 3_003, "year"),
            ("support", 10_000, "year"),
            ("monthly", 5_000, "month"),
        )
    }
    for percent in (10, 15, 20):
        client.v1.coupons.create({"id": f"ramp{percent}", "percent_off": percent, "duration": "forever"})
    return Account(key, client, customer, prices)


@pytest.fixture
def acct(standin) -> Account:
    return open_account(standin, "sk_test_schedules_a")


def subscribe(acct: Account, items: list[tuple[str, int]], coupon: str | None = None) -> stripe.Subscription:
    params: dict = {"customer": acct.customer, "items": [{"price": acct.prices[p], "quantity": q} for p, q in items]}
    if coupon:
        params["discounts"] = [{"coupon": coupon}]
    sub = acct.client.v1.subscriptions.create(params)
    assert sub.status == "active"
    return sub


def years_later(ts: int, years: int) -> int:
    start = datetime.fromtimestamp(ts, tz=UTC)
    day = min(start.day, calendar.monthrange(start.year + years, start.month)[1])
    return int(start.replace(year=start.year + years, day=day).timestamp())


def phase(acct: Account, end: int, items: list[tuple[str, int]], coupon: str | None, **extra) -> dict:
    return {
        "end_date": end,
        "items": [{"price": acct.prices[p], "quantity": q} for p, q in items],
        "discounts": [{"coupon": coupon}] if coupon else "",
        **extra,
    }


def after_discount(amounts: list[int], percent: int) -> int:
    """The list amounts less the coupon, rounded half away from zero on each line (as Stripe discounts)."""
    off = [int((Decimal(a) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for a in amounts]
    return sum(amounts) - sum(off)


def advance(standin, sub_id: str) -> dict:
    response = requests.post(f"{standin.url}/_standin/subscriptions/{sub_id}/advance", timeout=10)
    response.raise_for_status()
    return response.json()


def preview(acct: Account, sub_id: str) -> stripe.Invoice:
    return acct.client.v1.invoices.create_preview({"customer": acct.customer, "subscription": sub_id})


def charged(inv: stripe.Invoice) -> list[tuple]:
    """What an invoice charges, line by line: comparable between a preview and the invoice drawn."""
    return [
        (
            line.pricing.price_details.price,
            line.quantity,
            line.amount,
            line.period.start,
            line.period.end,
            sorted(d.amount for d in line.discount_amounts),
        )
        for line in inv.lines.data
    ]


def refused(call, status: int = 400) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    assert caught.value.http_status == status, caught.value.user_message
    return caught.value


def test_a_schedule_from_a_subscription_mirrors_its_current_period(standin, acct):
    sub = subscribe(acct, [("seat", 2), ("addon", 1)], coupon="ramp10")
    assert sub["schedule"] is None

    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})

    assert sched.id.startswith("sub_sched_") and sched.object == "subscription_schedule"
    assert (sched.status, sched.subscription, sched.customer) == ("active", sub.id, acct.customer)
    assert sched.end_behavior == "release"
    (first,) = sched.phases
    period = sub["items"].data[0]  # the current API keeps the period on the items
    assert (first.start_date, first.end_date) == (period.current_period_start, period.current_period_end)
    assert dict(sched.current_phase) == {"start_date": first.start_date, "end_date": first.end_date}
    assert {(i.price, i.quantity) for i in first["items"]} == {(acct.prices["addon"], 1), (acct.prices["seat"], 2)}
    assert [d.coupon for d in first.discounts] == ["ramp10"]
    assert first.proration_behavior == "create_prorations" and first.currency == "usd"
    assert sched.released_at is None and sched.canceled_at is None and sched.completed_at is None
    assert acct.client.v1.subscriptions.retrieve(sub.id)["schedule"] == sched.id
    assert standin.get(f"/v1/subscription_schedules/{sched.id}", acct.key) == json.loads(str(sched))
    assert [e["data"]["object"]["id"] for e in standin.events("subscription_schedule.created")] == [sched.id]

    # One schedule per subscription; a schedule is made from a subscription only, and from nothing else.
    error = refused(lambda: acct.client.v1.subscription_schedules.create({"from_subscription": sub.id}))
    assert error.param == "from_subscription" and sched.id in error.user_message
    error = refused(
        lambda: acct.client.v1.subscription_schedules.create({"from_subscription": sub.id, "end_behavior": "cancel"})
    )
    assert error.param == "end_behavior"
    assert error.user_message == "You cannot set `end_behavior` if `from_subscription` is set."
    error = refused(lambda: acct.client.v1.subscription_schedules.create({"customer": acct.customer}))
    assert error.param == "from_subscription"
    canceled = subscribe(acct, [("seat", 1)])
    acct.client.v1.subscriptions.cancel(canceled.id)
    error = refused(lambda: acct.client.v1.subscription_schedules.create({"from_subscription": canceled.id}))
    assert error.param == "from_subscription"


def test_a_three_year_ramp_renews_year_by_year_with_each_years_coupon_as_previewed(standin, acct):
    items = [("seat", 1), ("addon", 3)]
    list_amounts = [50_005, 9_009]
    sub = subscribe(acct, items, coupon="ramp10")
    first = acct.client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.total == after_discount(list_amounts, 10) == 53_112  # per line: 5001 + 901 off, not 5901 in all
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    start = sched.phases[0].start_date
    sched = acct.client.v1.subscription_schedules.update(
        sched.id,
        {
            "end_behavior": "release",
            "phases": [
                phase(acct, years_later(start, 1), items, "ramp10", start_date=start),
                phase(acct, years_later(start, 2), items, "ramp15"),
                phase(acct, years_later(start, 3), items, "ramp20"),
            ],
        },
    )
    assert [(p.start_date, p.end_date) for p in sched.phases] == [
        (years_later(start, n), years_later(start, n + 1)) for n in range(3)
    ]
    assert [[d.coupon for d in p.discounts] for p in sched.phases] == [["ramp10"], ["ramp15"], ["ramp20"]]

    for year, percent in ((2, 15), (3, 20)):
        upcoming = preview(acct, sub.id)
        renewed = advance(standin, sub.id)
        inv = acct.client.v1.invoices.retrieve(renewed["latest_invoice"])
        assert inv.status == "paid" and inv.billing_reason == "subscription_cycle"
        assert inv.total == after_discount(list_amounts, percent), year
        assert (upcoming.total, upcoming.subtotal, charged(upcoming)) == (inv.total, inv.subtotal, charged(inv))
        assert renewed["current_period_start"] == years_later(start, year - 1)
        assert renewed["schedule"] == sched.id
        current = acct.client.v1.subscription_schedules.retrieve(sched.id).current_phase
        assert (current.start_date, current.end_date) == (years_later(start, year - 1), years_later(start, year))
    assert inv.total == 47_211

    # The last phase ends: the schedule completes (end_behavior release) and the renewal keeps the last coupon.
    upcoming = preview(acct, sub.id)
    renewed = advance(standin, sub.id)
    inv = acct.client.v1.invoices.retrieve(renewed["latest_invoice"])
    assert inv.total == after_discount(list_amounts, 20)
    assert (upcoming.total, charged(upcoming)) == (inv.total, charged(inv))
    sched = acct.client.v1.subscription_schedules.retrieve(sched.id)
    assert (sched.status, sched.released_subscription, sched.current_phase) == ("completed", sub.id, None)
    assert sched.completed_at is not None
    assert renewed["schedule"] is None and renewed["status"] == "active"
    inv = acct.client.v1.invoices.retrieve(advance(standin, sub.id)["latest_invoice"])
    assert inv.total == after_discount(list_amounts, 20)
    assert [e["data"]["object"]["id"] for e in standin.events("subscription_schedule.completed")] == [sched.id]


def test_a_phase_changes_the_items_at_its_renewal_keeping_the_ids_of_the_prices_it_keeps(standin, acct):
    sub = subscribe(acct, [("seat", 1), ("addon", 2)])
    item_ids = {i.price.id: i.id for i in sub["items"].data}
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    start, end = sched.phases[0].start_date, sched.phases[0].end_date
    acct.client.v1.subscription_schedules.update(
        sched.id,
        {
            "phases": [
                phase(acct, end, [("seat", 1), ("addon", 2)], None),
                phase(acct, years_later(start, 2), [("seat", 4), ("support", 1)], "ramp15"),
            ]
        },
    )
    upcoming = preview(acct, sub.id)
    renewed = advance(standin, sub.id)
    inv = acct.client.v1.invoices.retrieve(renewed["latest_invoice"])
    assert inv.total == after_discount([4 * 50_005, 10_000], 15)
    assert (upcoming.total, charged(upcoming)) == (inv.total, charged(inv))
    now_items = {i["price"]["id"]: i for i in renewed["items"]["data"]}
    assert set(now_items) == {acct.prices["seat"], acct.prices["support"]}
    assert now_items[acct.prices["seat"]]["id"] == item_ids[acct.prices["seat"]]
    assert now_items[acct.prices["seat"]]["quantity"] == 4
    assert now_items[acct.prices["support"]]["id"] not in item_ids.values()
    (updated,) = [
        e
        for e in standin.events("customer.subscription.updated")
        if "items" in e["data"].get("previous_attributes", {})
    ]
    assert {i["price"]["id"] for i in updated["data"]["object"]["items"]["data"]} == set(now_items)


def test_a_direct_change_of_the_subscription_is_its_current_phases_too(standin, acct):
    sub = subscribe(acct, [("seat", 1)])
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    acct.client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": sub["items"].data[0].id, "quantity": 3}], "discounts": [{"coupon": "ramp20"}]},
    )
    (first,) = acct.client.v1.subscription_schedules.retrieve(sched.id).phases
    assert [(i.price, i.quantity) for i in first["items"]] == [(acct.prices["seat"], 3)]
    assert [d.coupon for d in first.discounts] == ["ramp20"]
    # The schedule's phases end on the billing periods: the stand-in keeps the interval of a scheduled subscription.
    error = refused(
        lambda: acct.client.v1.subscriptions.update(
            sub.id,
            {"items": [{"id": sub["items"].data[0].id, "deleted": True}, {"price": acct.prices["monthly"]}]},
        )
    )
    assert error.param == "items"


def test_the_current_phases_discounts_apply_to_the_subscription_at_once(standin, acct):
    sub = subscribe(acct, [("seat", 1)], coupon="ramp10")
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    end = sched.phases[0].end_date
    acct.client.v1.subscription_schedules.update(sched.id, {"phases": [phase(acct, end, [("seat", 1)], "ramp20")]})
    sub = acct.client.v1.subscriptions.retrieve(sub.id)
    assert preview(acct, sub.id).total == after_discount([50_005], 20)
    (updated,) = [
        e
        for e in standin.events("customer.subscription.updated")
        if "discounts" in e["data"].get("previous_attributes", {})
    ]
    assert updated["data"]["object"]["discounts"] == sub.discounts and len(sub.discounts) == 1


def test_end_behavior_cancel_ends_the_subscription_at_the_last_phases_end(standin, acct):
    sub = subscribe(acct, [("seat", 1)], coupon="ramp10")
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    start = sched.phases[0].start_date
    acct.client.v1.subscription_schedules.update(
        sched.id,
        {
            "end_behavior": "cancel",
            "phases": [
                phase(acct, years_later(start, 1), [("seat", 1)], "ramp10"),
                phase(acct, years_later(start, 2), [("seat", 1)], "ramp15"),
            ],
        },
    )
    renewed = advance(standin, sub.id)
    assert renewed["status"] == "active"
    assert acct.client.v1.invoices.retrieve(renewed["latest_invoice"]).total == after_discount([50_005], 15)
    invoices_before = len(standin.invoices(acct.key, acct.customer))

    ended = advance(standin, sub.id)

    assert ended["status"] == "canceled" and ended["ended_at"] is not None
    assert ended["current_period_end"] == years_later(start, 2)  # ended at the period end, not renewed
    assert len(standin.invoices(acct.key, acct.customer)) == invoices_before
    sched = acct.client.v1.subscription_schedules.retrieve(sched.id)
    assert (sched.status, sched.released_subscription) == ("completed", None)
    assert [e["data"]["object"]["id"] for e in standin.events("customer.subscription.deleted")] == [sub.id]


def test_release_keeps_the_subscription_as_it_is_and_frees_its_cancelation(standin, acct):
    sub = subscribe(acct, [("seat", 2)], coupon="ramp15")
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    end = sched.phases[0].end_date
    acct.client.v1.subscription_schedules.update(
        sched.id,
        {"phases": [phase(acct, end, [("seat", 2)], "ramp15"), phase(acct, years_later(end, 1), [("seat", 5)], None)]},
    )
    error = refused(lambda: acct.client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True}))
    assert error.param == "cancel_at_period_end"
    assert error.user_message == (
        f"The subscription is managed by the subscription schedule `{sched.id}`, and updating any cancelation "
        "behavior directly is not allowed. Please update the schedule instead."
    )

    released = acct.client.v1.subscription_schedules.release(sched.id)

    assert (released.status, released.released_subscription) == ("released", sub.id)
    assert released.released_at is not None and released.current_phase is None
    after = acct.client.v1.subscriptions.retrieve(sub.id)
    assert after["schedule"] is None and after.discounts == sub.discounts
    assert [(i.price.id, i.quantity) for i in after["items"].data] == [(acct.prices["seat"], 2)]
    # The released schedule's next phase is gone: the renewal is the subscription as it is.
    assert preview(acct, sub.id).total == after_discount([2 * 50_005], 15)
    assert acct.client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True}).cancel_at_period_end
    refused(lambda: acct.client.v1.subscription_schedules.release(sched.id))
    refused(lambda: acct.client.v1.subscription_schedules.update(sched.id, {"end_behavior": "cancel"}))
    assert [e["data"]["object"]["id"] for e in standin.events("subscription_schedule.released")] == [sched.id]


def test_cancel_ends_the_schedule_and_the_subscription_now(standin, acct):
    sub = subscribe(acct, [("seat", 1)])
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})

    canceled = acct.client.v1.subscription_schedules.cancel(sched.id)

    assert canceled.status == "canceled" and canceled.canceled_at is not None
    after = acct.client.v1.subscriptions.retrieve(sub.id)
    assert after.status == "canceled" and after.ended_at is not None
    refused(lambda: acct.client.v1.subscription_schedules.cancel(sched.id))
    assert [e["data"]["object"]["id"] for e in standin.events("subscription_schedule.canceled")] == [sched.id]


@pytest.mark.parametrize(
    "case, param",
    [
        ("gap between phases", "phases[1][start_date]"),
        ("end not on a period boundary", "phases[1][end_date]"),
        ("unknown coupon", "phases[1][discounts][0][coupon]"),
        ("unknown price", "phases[1][items][0][price]"),
        ("another interval", "phases[1][items][0][price]"),
        ("no end date", "phases[1][end_date]"),
        ("first phase moved", "phases[0][start_date]"),
        ("current phase items changed", "phases[0][items]"),
        ("unknown phase parameter", "phases[1][iterations]"),
        ("unknown parameter", "default_settings"),
        ("bad end behavior", "end_behavior"),
    ],
)
def test_an_update_the_stand_in_does_not_simulate_is_refused_with_its_param(standin, acct, case, param):
    sub = subscribe(acct, [("seat", 1)], coupon="ramp10")
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    start, end = sched.phases[0].start_date, sched.phases[0].end_date
    current = phase(acct, end, [("seat", 1)], "ramp10")
    following = phase(acct, years_later(start, 2), [("seat", 2)], "ramp15")
    params: dict = {"phases": [current, following]}
    if case == "gap between phases":
        following["start_date"] = end + 86_400
    elif case == "end not on a period boundary":
        following["end_date"] = years_later(start, 2) - 86_400
    elif case == "unknown coupon":
        following["discounts"] = [{"coupon": "nope"}]
    elif case == "unknown price":
        following["items"] = [{"price": "price_nope", "quantity": 1}]
    elif case == "another interval":
        following["items"] = [{"price": acct.prices["monthly"], "quantity": 1}]
    elif case == "no end date":
        del following["end_date"]
    elif case == "first phase moved":
        current["start_date"] = start - 86_400
    elif case == "current phase items changed":
        current["items"] = [{"price": acct.prices["seat"], "quantity": 2}]
    elif case == "unknown phase parameter":
        following["iterations"] = 1
    elif case == "unknown parameter":
        params["default_settings"] = {"collection_method": "send_invoice"}
    elif case == "bad end behavior":
        params["end_behavior"] = "renew"

    before = standin.get(f"/v1/subscription_schedules/{sched.id}", acct.key)

    error = refused(lambda: acct.client.v1.subscription_schedules.update(sched.id, params))

    assert error.param == param, error.user_message
    assert standin.get(f"/v1/subscription_schedules/{sched.id}", acct.key) == before  # nothing of it is kept
    assert acct.client.v1.subscriptions.retrieve(sub.id).discounts == sub.discounts
    assert standin.events("subscription_schedule.updated") == []


def test_another_accounts_schedule_does_not_exist_for_a_key(standin, acct):
    sub = subscribe(acct, [("seat", 1)])
    sched = acct.client.v1.subscription_schedules.create({"from_subscription": sub.id})
    other = open_account(standin, "sk_test_schedules_b")
    for call in (
        lambda: other.client.v1.subscription_schedules.retrieve(sched.id),
        lambda: other.client.v1.subscription_schedules.update(sched.id, {"end_behavior": "cancel"}),
        lambda: other.client.v1.subscription_schedules.release(sched.id),
        lambda: other.client.v1.subscription_schedules.cancel(sched.id),
        lambda: other.client.v1.subscription_schedules.create({"from_subscription": sub.id}),
        lambda: other.client.v1.subscription_schedules.retrieve("sub_sched_unknown"),
    ):
        assert refused(call, status=404).code == "resource_missing"
    after = acct.client.v1.subscription_schedules.retrieve(sched.id)
    assert (after.status, after.end_behavior) == ("active", "release")
