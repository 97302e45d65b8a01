"""The portal's card page through Django's test client, against the Stripe stand-in: offered only where the
tenant set up card entry, Stripe.js allowed by the CSP on those pages alone, another account's offer a 404,
and a SetupIntent id the server cannot confirm with Stripe explained on the page, with nothing changed."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.services.stripe_accounts import save_stripe_keys
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.upgrades.offers.factories_life import Holding, make_offer
from tests.upgrades.portal.test_portal_pages import _session
from upgrades.offers.models import OfferState
from upgrades.portal.selectors import ref_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def test_without_a_publishable_key_the_portal_offers_no_card_form(world_a, standin):
    billed_license(world_a.tenant, world_a.account, standin)
    client = _session(world_a)
    home = client.get("/portal/")
    assert b"Change the card I pay with" not in home.content
    page = client.get("/portal/card")
    assert page.status_code == 409 and b"Card entry is not set up" in page.content
    assert b"Talk to a person" in page.content or b"talk to a person" in page.content


def test_the_card_page_loads_stripe_js_for_this_account_only_and_checks_what_it_is_told(world_a, world_b, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    save_stripe_keys(world_a.tenant, actor="t", publishable_key="pk_test_tenanta")
    client = _session(world_a)
    home = client.get("/portal/")
    assert b"Change the card I pay with" in home.content
    assert standin.url not in home["Content-Security-Policy"]  # Stripe.js only where a card is taken

    page = client.get("/portal/card")
    assert page.status_code == 200
    body = page.content.decode()
    assert f'src="{standin.url}/js.stripe.com/v3/"' in body and 'data-publishable-key="pk_test_tenanta"' in body
    assert "_secret_" in body  # the SetupIntent's client secret, for Stripe.js; no card field of ours
    policy = page["Content-Security-Policy"]
    assert f"script-src 'self' {standin.url}" in policy and f"connect-src 'self' {standin.url}" in policy

    refused = client.post("/portal/card", {"setup_intent": "seti_madeup"})
    assert refused.status_code == 400 and b"The card was not saved" in refused.content  # Stripe does not know it
    assert b"Change the card" not in refused.content and b"data-card-form" in refused.content  # try again

    # Another account's offer (tenant B's) in the reference: 404, nothing of it shown.
    held_b = billed_license(world_b.tenant, world_b.account, standin)
    offer_b = make_offer(Holding(held_b.tenant, held_b.account, held_b.catalog, held_b.license), state=OfferState.SENT)
    assert client.get(f"/portal/card?offer={ref_for('offer', offer_b)}").status_code == 404
    # This account's offer that has no failed payment: the card page is plain (no payment is retried).
    mine = make_offer(Holding(billed.tenant, billed.account, billed.catalog, billed.license), state=OfferState.SENT)
    plain = client.get(f"/portal/card?offer={ref_for('offer', mine)}")
    assert plain.status_code == 200 and b"Save this card and pay" not in plain.content


def test_the_card_page_needs_a_portal_session(world_a, standin):
    billed_license(world_a.tenant, world_a.account, standin)
    save_stripe_keys(world_a.tenant, actor="t", publishable_key="pk_test_tenanta")
    anonymous = Client()
    assert anonymous.get("/portal/card").status_code == 403
    assert anonymous.post("/portal/card", {"setup_intent": "seti_x"}).status_code in (403,)
