"""The offer pages: list and filters, one offer's evidence, options, quote and ROI in the one money and date
style, the actions through the lifecycle services, roles, and another tenant's ids answering 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, CustomerAccount, Role
from catalog.models import DiscountPolicy, GovernanceState
from tests.upgrades.offers.admin_factories import make_offer
from tests.upgrades.offers.conftest import make_live_settings
from upgrades.offers.models import Feedback, FeedbackKind, Offer, OfferEvent, OfferState


def detail(offer: Offer) -> str:
    return reverse("admin:upgrades_offer_change", args=[offer.pk])


def act(offer: Offer) -> str:
    return reverse("admin:upgrades_offer_act", args=[offer.pk])


def test_the_offer_page_shows_evidence_options_anchor_discount_quote_roi_and_timeline(world_a, live_settings):
    offer = make_offer(world_a.account, live_settings, state=OfferState.VIEWED, discount_percent="10")
    Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, offer=offer, kind=FeedbackKind.SURVEY,
                            text="Clear and fair.")  # fmt: skip
    page = world_a.staff_client(Role.ANALYST).get(detail(offer)).content.decode()
    assert "API calls reached 95% of the Team limit on 6 of the last 7 days" in page
    assert "47,500 calls" in page and "61,000" in page and "6 of 7" in page
    assert "$79.00" in page and "$790.00" in page and "$65.83 a month" in page  # monthly and annual side by side
    assert "saves $158.00 (16.67 %) versus monthly" in page
    assert "Anchor: Enterprise" in page and "$1,990.00" in page
    assert "10 %" in page and "Launch month: 10 % off the first year." in page
    assert "Unused time on Team (5 seats)" in page and "-$14.50" in page and "$775.50" in page
    assert "2 Dec 2026 – 17 Dec 2026" in page and "from 2 Dec 2027" in page
    assert "Business pays for itself in 4 months." in page and "Ops time saved: $180.00" in page
    assert "Value a month" in page and "$210.00" in page
    assert page.count('data-testid="event"') == 2 and "sent → <strong>viewed</strong>" in page
    assert "Clear and fair." in page
    assert "Holds now: Team v1 at $145.00 a month, 5 seats." in page


def test_the_list_filters_by_state_and_account(world_a, live_settings):
    other = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="acct-2", name="Second Co")
    sent = make_offer(world_a.account, live_settings, state=OfferState.SENT)
    waiting = make_offer(other, live_settings, state=OfferState.AWAITING_REVIEW)
    client = world_a.staff_client(Role.CSM)
    listing = client.get(reverse("admin:upgrades_offer_changelist"), {"state": "awaiting_review"}).content.decode()
    assert detail(waiting) in listing and detail(sent) not in listing
    listing = client.get(reverse("admin:upgrades_offer_changelist"), {"account__id__exact": other.pk}).content.decode()
    assert detail(waiting) in listing and detail(sent) not in listing
    assert "Make an offer now" in listing and f"/admin/upgrades/offer/make/?account={other.pk}" in listing
    page = client.get(detail(waiting)).content.decode()
    assert f"/admin/upgrades/trial/start/?account={other.pk}&amp;target_kind=tier&amp;target_key=business" in page


def test_a_csm_reviews_and_sends_then_withdraws_with_a_reason(world_a, live_settings):
    offer = make_offer(world_a.account, live_settings, state=OfferState.AWAITING_REVIEW)
    csm = world_a.staff_client(Role.CSM)
    assert csm.post(act(offer), {"verb": "review"}).status_code == 302
    offer.refresh_from_db()
    assert (offer.state, offer.reviewed_by) == (OfferState.SENT, world_a.staff[Role.CSM])
    csm.post(act(offer), {"verb": "withdraw", "reason": "Customer is moving to annual billing first."})
    offer.refresh_from_db()
    assert offer.state == OfferState.WITHDRAWN
    assert OfferEvent.objects.filter(offer=offer, to_state="withdrawn").get().note.startswith("Customer is moving")
    page = csm.get(detail(offer)).content.decode()
    assert "Customer is moving to annual billing first." in page and 'data-testid="action-' not in page


def test_an_out_of_policy_discount_waits_for_the_policys_approver(world_a, live_settings):
    DiscountPolicy.objects.create(tenant=world_a.tenant, key="std", name="Standard", cap_percent=20,
                                  state=GovernanceState.PUBLISHED, exception_approver_role="owner")  # fmt: skip
    offer = make_offer(world_a.account, live_settings, state=OfferState.AWAITING_REVIEW, discount_percent="30",
                       approval_needed=True)  # fmt: skip
    csm = world_a.staff_client(Role.CSM)
    page = csm.get(detail(offer)).content.decode()
    assert "outside the discount policy" in page and "approve it first" in page
    assert csm.post(act(offer), {"verb": "approve_discount"}).status_code == 403
    csm.post(act(offer), {"verb": "review"})  # refused by the service: the discount waits
    offer.refresh_from_db()
    assert offer.state == OfferState.AWAITING_REVIEW
    world_a.staff_client(Role.OWNER).post(act(offer), {"verb": "approve_discount"})
    offer.refresh_from_db()
    assert offer.discount_approved_by == world_a.staff[Role.OWNER] and offer.state == OfferState.SENT
    assert AuditEntry.objects.filter(action="offer.discount_approved").exists()


@pytest.mark.parametrize("verb", ["review", "withdraw", "approve_discount", "accept"])
def test_an_analyst_can_read_but_not_send_approve_withdraw_or_accept(world_a, live_settings, verb):
    offer = make_offer(world_a.account, live_settings, state=OfferState.AWAITING_REVIEW, discount_percent="30",
                       approval_needed=True)  # fmt: skip
    analyst = world_a.staff_client(Role.ANALYST)
    page = analyst.get(detail(offer)).content.decode()
    assert "permission" in page
    assert analyst.post(act(offer), {"verb": verb, "option_key": "business-year"}).status_code == 403
    offer.refresh_from_db()
    assert (offer.state, offer.discount_approved_at) == (OfferState.AWAITING_REVIEW, None)
    assert analyst.get(reverse("admin:upgrades_offer_make")).status_code == 403


def test_another_tenants_offer_is_404_on_every_page_and_action(world_a, world_b, live_settings):
    theirs = make_offer(world_b.account, make_live_settings(world_b.tenant), state=OfferState.AWAITING_REVIEW)
    owner = world_a.staff_client(Role.OWNER)
    assert owner.get(detail(theirs)).status_code == 404
    for verb in ("review", "withdraw", "approve_discount", "accept"):
        assert owner.post(act(theirs), {"verb": verb}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == OfferState.AWAITING_REVIEW
    listing = owner.get(reverse("admin:upgrades_offer_changelist")).content.decode()
    assert detail(theirs) not in listing
    # "Make an offer now" for B's account from A: refused, nothing built
    answer = owner.post(reverse("admin:upgrades_offer_make"), {"account": world_b.account.pk})
    assert answer.status_code == 200 and "Choose one of your accounts." in answer.content.decode()
    assert Offer.objects.filter(tenant=world_b.tenant).count() == 1
