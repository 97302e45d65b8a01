"""Accept -> settled -> fulfilled through a real Celery worker, the Stripe stand-in and signed webhooks;
the price shown is the price charged (quote_stale), and a failed payment is shown and retried."""

from __future__ import annotations

import pytest

from accounts.errors import Conflict
from billing.models import LicenseChange, PlanChange, PlanChangeState
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.offers.factories_life import Holding, make_offer
from upgrades.offers.models import Offer, OfferEvent, OfferState
from upgrades.offers.serializers import present_offer
from upgrades.offers.services.acceptance import accept_offer, open_offer, retry_offer_payment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
S = OfferState
# The Stripe stand-in (a subprocess for the session, emptied per test) from the billing tests.
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


@pytest.fixture
def billed(world_a, standin, live_server):
    return billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )


@pytest.fixture
def held(billed) -> Holding:
    return Holding(billed.tenant, billed.account, billed.catalog, billed.license)


def reloaded(offer: Offer) -> Offer:
    return Offer.objects.select_related("plan_change", "account").get(pk=offer.pk)


def fulfilled(offer: Offer):
    current = reloaded(offer)
    return current if current.state == S.FULFILLED else None


def payment_state(offer: Offer, *states: str):
    current = reloaded(offer)
    return current if current.plan_change is not None and current.plan_change.state in states else None


def test_an_opened_offer_shows_stripes_quote_and_accepting_it_charges_exactly_that(
    held, billed, world_a, standin, celery_worker_process
):
    offer = make_offer(held, state=S.SENT)
    assert offer.quote["source"] == "estimate"

    opened = open_offer(world_a.tenant, offer=offer, actor="customer")

    assert (opened.state, opened.viewed_at is not None) == (S.VIEWED, True)
    quote = opened.quote
    assert (quote["source"], quote["option"]) == ("stripe", "business-month")
    assert quote["amount_due_now"] == sum(line["amount"] for line in quote["lines"]) > 0
    assert any(line["amount"] < 0 for line in quote["lines"])  # the credit for unused Team time is a line
    assert quote["next_renewal_amount"] == 3 * billed.catalog.prices["business-month"].amount
    quoted = opened.plan_change
    assert (quoted.state, quoted.reference) == (PlanChangeState.QUOTED, f"offer:{offer.pk}")

    accepted = accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")

    assert (accepted.state, accepted.accepted_option, accepted.plan_change_id) == (
        S.ACCEPTED,
        "business-month",
        quoted.pk,
    )
    assert PlanChange.objects.count() == 1  # the quote the customer saw is the one confirmed
    done = wait_for(lambda: fulfilled(offer), timeout=90)
    pc = done.plan_change
    assert pc.state == PlanChangeState.SETTLED and pc.charge_mismatch == {}
    assert done.amount_charged == pc.charged_amount == quote["amount_due_now"]
    assert present_offer(done)["amount_charged"] == quote["amount_due_now"]
    assert present_offer(done)["payment"] == {"state": "settled", "failure": None, "retry_possible": False}
    license = billed.refresh()
    assert (license.tier.key, license.seats) == ("business", 3)
    assert LicenseChange.objects.get(license=license, kind="upgrade").reference == f"offer:{offer.pk}"
    assert list(OfferEvent.objects.filter(offer=offer).values_list("to_state", flat=True)) == [
        "viewed",
        "accepted",
        "fulfilled",
    ]
    paid = [c for c in standin.charges(billed.api_key, license.stripe_customer_id) if c["status"] == "succeeded"]
    assert [c["amount"] for c in paid].count(quote["amount_due_now"]) == 1
    # Accepting again (a double click) changes nothing and charges nothing.
    assert accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer").state == S.FULFILLED
    assert PlanChange.objects.count() == 1


def test_a_price_that_differs_from_the_shown_quote_is_shown_first_and_charged_only_when_accepted_again(
    held, billed, world_a, celery_worker_process
):
    offer = make_offer(held, state=S.VIEWED)
    shown = offer.quote["amount_due_now"] + 100  # what the customer saw is not what Stripe would charge now
    Offer.objects.filter(pk=offer.pk).update(quote={**offer.quote, "amount_due_now": shown})

    with pytest.raises(Conflict) as stale:
        accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")

    assert stale.value.code == "quote_stale"
    refreshed = reloaded(offer)
    assert refreshed.state == S.VIEWED
    assert stale.value.details["shown_amount_due_now"] == shown
    assert refreshed.quote["amount_due_now"] == stale.value.details["amount_due_now"] != shown
    assert refreshed.quote["source"] == "stripe"
    assert refreshed.plan_change.state == PlanChangeState.QUOTED  # nothing confirmed, nothing charged

    accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")
    done = wait_for(lambda: fulfilled(offer), timeout=90)
    assert done.amount_charged == refreshed.quote["amount_due_now"]
    assert done.plan_change_id == refreshed.plan_change_id


def test_choosing_an_option_whose_price_was_not_shown_shows_it_first(held, billed, world_a, celery_worker_process):
    offer = make_offer(held, state=S.VIEWED)  # the shown quote is for the monthly option

    with pytest.raises(Conflict) as stale:
        accept_offer(world_a.tenant, offer=offer, option_key="business-year", actor="customer")

    assert stale.value.code == "quote_stale"
    assert reloaded(offer).quote["option"] == "business-year"
    accept_offer(world_a.tenant, offer=offer, option_key="business-year", actor="customer")
    done = wait_for(lambda: fulfilled(offer), timeout=90)
    assert billed.refresh().price_id == billed.catalog.prices["business-year"].pk
    assert done.amount_charged == done.quote["amount_due_now"]


def test_a_declined_card_shows_the_failure_on_the_offer_and_a_retry_pays_the_same_invoice(
    held, billed, world_a, standin, celery_worker_process
):
    customer = billed.license.stripe_customer_id
    standin.set_card(customer, "4000000000000002")
    offer = make_offer(held, state=S.SENT)
    open_offer(world_a.tenant, offer=offer, actor="customer")
    accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")

    failed = wait_for(lambda: payment_state(offer, PlanChangeState.FAILED, PlanChangeState.SETTLED), timeout=90)

    assert failed.state == S.ACCEPTED
    shown = present_offer(failed)["payment"]
    assert shown["state"] == "failed" and shown["retry_possible"] is True
    assert shown["failure"]["code"] == "card_declined" and shown["failure"]["message"]
    assert billed.refresh().tier.key == "team"
    invoices_after_failure = standin.invoices(billed.api_key, customer)

    standin.set_card(customer, "4242424242424242")
    retry_offer_payment(world_a.tenant, offer=offer, actor="customer")
    done = wait_for(lambda: fulfilled(offer), timeout=90)

    assert done.plan_change_id == failed.plan_change_id
    assert done.amount_charged == failed.plan_change.quote_amount_due
    assert billed.refresh().tier.key == "business"
    assert len(standin.invoices(billed.api_key, customer)) == len(invoices_after_failure)  # no second invoice
    assert present_offer(done)["payment"]["failure"] is None


def test_a_payment_billing_gave_up_on_is_quoted_again_and_the_new_figure_confirmed(
    held, billed, world_a, standin, celery_worker_process
):
    from billing.services.plan_changes import cancel_plan_change

    customer = billed.license.stripe_customer_id
    standin.set_card(customer, "4000000000000002")
    offer = make_offer(held, state=S.SENT)
    open_offer(world_a.tenant, offer=offer, actor="customer")
    accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")
    failed = wait_for(lambda: payment_state(offer, PlanChangeState.FAILED), timeout=90)
    cancel_plan_change(world_a.tenant, plan_change=failed.plan_change, actor="staff", reason="invoice voided")
    shown = present_offer(reloaded(offer))["payment"]
    assert (shown["state"], shown["failure"]["code"], shown["retry_possible"]) == ("canceled", "card_declined", True)

    standin.set_card(customer, "4242424242424242")
    try:
        retry_offer_payment(world_a.tenant, offer=offer, actor="customer")
    except Conflict as stale:  # seconds later Stripe's proration may differ by a cent: shown first, then confirmed
        assert stale.code == "quote_stale"
        assert present_offer(reloaded(offer))["payment"]["retry_possible"] is True
        retry_offer_payment(world_a.tenant, offer=offer, actor="customer")
    done = wait_for(lambda: fulfilled(offer), timeout=90)

    assert done.plan_change_id != failed.plan_change_id
    assert done.amount_charged == done.plan_change.quote_amount_due == done.quote["amount_due_now"]
    assert billed.refresh().tier.key == "business"
    assert PlanChange.objects.filter(state=PlanChangeState.SETTLED).count() == 1


def test_an_offers_policy_discount_is_what_stripe_quotes_and_charges(held, billed, world_a, celery_worker_process):
    offer = make_offer(held, state=S.SENT)
    discount = {"percent": "10", "amount": 2970, "explanation": "Volume", "within_policy": True, "variant": ""}
    options = [
        {**offer.options[0], "discount": discount, "amount": offer.options[0]["amount"] - 2970},
        offer.options[1],
    ]
    Offer.objects.filter(pk=offer.pk).update(options=options, discount=discount)
    undiscounted = offer.quote["amount_due_now"]

    opened = open_offer(world_a.tenant, offer=offer, actor="customer")
    assert opened.plan_change.discount_percent == 10
    assert opened.quote["amount_due_now"] < undiscounted  # Stripe's own preview carries the discount
    accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")
    done = wait_for(lambda: fulfilled(offer), timeout=90)

    assert done.amount_charged == opened.quote["amount_due_now"]
    assert done.plan_change_id == opened.plan_change_id
    assert done.plan_change.charge_mismatch == {}
