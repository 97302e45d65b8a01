"""An account with no licence row (the tenant's default free tier) accepts its offer: billing's first purchase,
through a real Celery worker, the Stripe stand-in and signed webhooks. The price shown is the price charged,
and the paid licence exists only once the payment settled."""

from __future__ import annotations

import pytest

from accounts.errors import Conflict
from billing.models import License, LicenseChange, PlanChange, PlanChangeKind, PlanChangeState
from tests.billing import conftest as billing_fixtures
from tests.billing.factories import configure_stripe
from tests.conftest import wait_for
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.services.acceptance import accept_offer, open_offer
from upgrades.offers.services.building import build_offers_for_signals

from .conftest import make_live_settings
from .engine_world import engine_world

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
S = OfferState
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin
GOOD_CARD = "4242424242424242"


@pytest.fixture
def ew(world_a, standin, live_server):
    world = engine_world(world_a)
    api_key, secret = f"sk_test_{world.tenant.slug.replace('-', '')}", f"whsec_{world.tenant.slug}secret"
    configure_stripe(world.tenant, secret_key=api_key, webhook_secret=secret)
    standin.register_webhook(
        world.tenant.slug,
        url=f"{live_server.url}/billing/stripe/webhook/{world.tenant.slug}/",
        secret=secret,
        api_key=api_key,
    )
    make_live_settings(world.tenant)
    return world


def free_offer(ew) -> Offer:
    bare = ew.account("bare")  # no licence row: on the tenant's default free tier
    ew.growing(bare, start=100, step=150)
    (offer,) = build_offers_for_signals(ew.tenant, signal_ids=[ew.signal(bare).pk])
    offer = Offer.objects.select_related("account").get(pk=offer.pk)
    assert (offer.holding["tier"], offer.holding["license"], offer.quote["kind"]) == ("free", None, "new")
    return offer


def fulfilled(offer: Offer):
    current = Offer.objects.select_related("plan_change").get(pk=offer.pk)
    return current if current.state == S.FULFILLED else None


def test_a_free_tier_account_accepts_its_offer_and_the_licence_is_paid_for_only_when_stripe_settles(
    ew, standin, celery_worker_process
):
    offer = free_offer(ew)
    shown = offer.quote["amount_due_now"]
    assert shown > 0 and not License.objects.filter(account=offer.account).exists()

    opened = open_offer(ew.tenant, offer=offer, actor="customer")

    assert (opened.state, opened.quote["source"], opened.quote["amount_due_now"]) == (S.VIEWED, "stripe", shown)
    quoted = opened.plan_change
    assert (quoted.kind, quoted.state, quoted.reference) == (
        PlanChangeKind.NEW,
        PlanChangeState.QUOTED,
        f"offer:{offer.pk}",
    )
    free = License.objects.get(account=offer.account)  # billing's free licence, the first purchase's start
    assert (free.tier.key, free.price_id, free.mrr, free.stripe_subscription_id) == ("free", None, 0, "")
    standin.set_card(free.stripe_customer_id, GOOD_CARD)

    accepted = accept_offer(ew.tenant, offer=offer, option_key=opened.quote["option"], actor="customer")

    assert (accepted.state, accepted.plan_change_id) == (S.ACCEPTED, quoted.pk)
    assert PlanChange.objects.count() == 1  # the quote the customer saw is the one confirmed
    done = wait_for(lambda: fulfilled(offer), timeout=90)
    pc = done.plan_change
    assert pc.state == PlanChangeState.SETTLED and pc.charge_mismatch == {}
    assert done.amount_charged == pc.charged_amount == shown  # the price shown is the price charged
    license = License.objects.get(account=offer.account)
    assert license.pk == free.pk and license.tier.key == done.target_key and license.price_id is not None
    assert license.stripe_subscription_id == pc.stripe_subscription_id != ""
    change = LicenseChange.objects.get(license=license, kind="upgrade")
    assert (change.mrr_before, change.reference) == (0, f"offer:{offer.pk}")


def test_a_free_tier_price_stripe_quotes_differently_is_shown_first_and_nothing_is_bought(
    ew, standin, celery_worker_process
):
    offer = free_offer(ew)
    Offer.objects.filter(pk=offer.pk).update(quote={**offer.quote, "amount_due_now": offer.quote["amount_due_now"] - 1})
    offer.refresh_from_db()

    with pytest.raises(Conflict) as refused:
        accept_offer(ew.tenant, offer=offer, option_key=offer.recommended_option, actor="customer")

    assert refused.value.code == "quote_stale"
    assert refused.value.details["amount_due_now"] == refused.value.details["shown_amount_due_now"] + 1
    current = Offer.objects.select_related("plan_change").get(pk=offer.pk)
    assert current.state == S.SENT and current.quote["source"] == "stripe"
    assert current.plan_change.state == PlanChangeState.QUOTED  # quoted, never confirmed
    license = License.objects.get(account=offer.account)
    assert (license.tier.key, license.price_id, license.mrr) == ("free", None, 0)
    standin.set_card(license.stripe_customer_id, GOOD_CARD)

    accepted = accept_offer(ew.tenant, offer=offer, option_key=offer.recommended_option, actor="customer")

    assert accepted.state == S.ACCEPTED
    done = wait_for(lambda: fulfilled(offer), timeout=90)
    assert done.amount_charged == refused.value.details["amount_due_now"]
