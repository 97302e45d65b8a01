"""The offers demo with the Stripe stand-in: an accepted offer and one fulfilled through a real settled plan
change (the licence moved to the offered tier, amount charged from the invoice), and the sent offer a new
user accepts in the admin, after which the licence changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from billing.models import License, PlanChangeState
from tests.billing import conftest as billing_fixtures
from tests.upgrades.offers.test_demo import picture, seed
from upgrades.offers.demo import seed_offers_demo
from upgrades.offers.models import Offer, OfferState

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def holds(licence: License, offer: Offer) -> bool:
    """The licence holds what the offer offered (a tier, an add-on, or a bundle's tier and add-ons)."""
    licence.refresh_from_db()
    addons = set(licence.addons.values_list("key", flat=True))
    if offer.target_kind == "tier":
        return licence.tier.key == offer.target_key
    if offer.target_kind == "addon":
        return offer.target_key in addons
    option = next(o for o in offer.options if o["key"] == (offer.accepted_option or offer.recommended_option))
    return licence.tier.key == option["tier"] and set(option["addons"]) <= addons


def test_with_the_stand_in_every_state_is_there_and_a_person_can_accept_the_sent_offer(standin, client):
    demo, result = seed()
    tenant = demo.tenant
    states = set(Offer.objects.filter(tenant=tenant).values_list("state", flat=True))
    assert states >= {s.value for s in OfferState if s != OfferState.DRAFT}, states
    done = Offer.objects.select_related("plan_change").get(pk=result["slots"]["fulfilled"])
    assert done.state == OfferState.FULFILLED and done.plan_change.state == PlanChangeState.SETTLED
    assert done.amount_charged == done.plan_change.charged_amount
    waiting = Offer.objects.select_related("plan_change").get(pk=result["slots"]["accepted"])
    assert waiting.state == OfferState.ACCEPTED  # its card was declined: the failure shows, a retry is possible
    assert waiting.plan_change.state == PlanChangeState.FAILED
    licence = License.objects.select_related("tier").get(tenant=tenant, account=done.account)
    assert holds(licence, done)
    before = picture(tenant)
    seed_offers_demo(tenant)
    assert picture(tenant) == before

    # A new user (the demo's CSM) accepts the sent offer in the admin; the licence changes when it settles.
    sent = Offer.objects.get(pk=result["slots"]["sent"])
    held = License.objects.select_related("tier").get(tenant=tenant, account=sent.account)
    assert not holds(held, sent)
    client.force_login(User.objects.get(email="csm@acme.test"))
    page = client.get(reverse("admin:upgrades_offer_change", args=[sent.pk])).content.decode()
    assert 'data-testid="action-accept"' in page
    form = {"verb": "accept", "option_key": sent.recommended_option}
    client.post(reverse("admin:upgrades_offer_act", args=[sent.pk]), form)
    # tests run tasks eagerly: the worker's submit has run and the receiver fulfilled the offer
    sent.refresh_from_db()
    assert sent.state == OfferState.FULFILLED and sent.amount_charged is not None
    assert holds(held, sent)
