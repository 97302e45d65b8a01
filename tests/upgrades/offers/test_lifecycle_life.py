"""The offer lifecycle without a payment: every illegal move refused, declines with feedback, CSM review,
discount approval, withdrawal, and the expiry sweep (time travel through `now=`), tenant by tenant."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from django.utils import timezone

from accounts.errors import Conflict, InvalidInput, PermissionDenied
from accounts.models import AuditEntry, Role
from billing.models import PlanChange, PlanChangeKind, PlanChangeState
from catalog.models import DiscountPolicy, GovernanceState
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.offers.models import Feedback, FeedbackKind, Offer, OfferEvent, OfferState
from upgrades.offers.services.acceptance import accept_offer, fulfil_offer, open_offer, retry_offer_payment
from upgrades.offers.services.declines import decline_offer
from upgrades.offers.services.expiry import expire_offers, expire_offers_for_tenant
from upgrades.offers.services.lifecycle import ALLOWED, transition_offer
from upgrades.offers.services.review import approve_offer_discount, review_offer, withdraw_offer

pytestmark = pytest.mark.django_db
S = OfferState


@pytest.fixture
def held(world_a):
    return holding(world_a.tenant, world_a.account)


def plan_change(held, *, state: str, charged: int | None = None) -> PlanChange:
    return PlanChange.objects.create(
        tenant=held.tenant,
        license=held.license,
        account=held.account,
        kind=PlanChangeKind.UPGRADE,
        state=state,
        target_price=held.catalog.prices["business-month"],
        target_seats=3,
        quote_amount_due=12345,
        quote_expires_at=timezone.now() + timedelta(minutes=30),
        reference="offer:x",
        charged_amount=charged,
        settled_at=timezone.now() if state == PlanChangeState.SETTLED else None,
        failure_code="card_declined" if state == PlanChangeState.FAILED else "",
    )


# --- the state machine ---------------------------------------------------------------------------

ILLEGAL = [(a, b) for a, b in product(S.values, S.values) if a != b and b not in ALLOWED[a]]


@pytest.mark.parametrize(("from_state", "to_state"), ILLEGAL)
def test_every_illegal_transition_is_refused_and_writes_nothing(held, world_a, from_state, to_state):
    offer = make_offer(held, state=from_state)
    with pytest.raises(Conflict) as refused:
        transition_offer(world_a.tenant, offer=offer, to_state=to_state, actor=world_a.staff["csm"])
    assert refused.value.code == "illegal_transition"
    assert refused.value.details == {"state": from_state, "to_state": to_state}
    offer.refresh_from_db()
    assert offer.state == from_state
    assert not OfferEvent.objects.filter(offer=offer).exists()


def test_a_repeated_move_is_a_no_op_with_one_event(held, world_a):
    offer = make_offer(held, state=S.SENT)
    for _ in range(2):
        transition_offer(world_a.tenant, offer=offer, to_state=S.VIEWED, actor="customer")
    assert list(OfferEvent.objects.filter(offer=offer).values_list("from_state", "to_state")) == [("sent", "viewed")]


# --- declines ----------------------------------------------------------------------------------


def test_a_decline_keeps_the_reason_and_the_customers_words_as_feedback(held, world_a):
    offer = make_offer(held, state=S.VIEWED)
    feedback = decline_offer(
        world_a.tenant,
        offer=offer,
        reason_code="too_expensive",
        text="  We can't justify it this quarter. ",
        actor="customer",
        contact=world_a.contact,
        source="portal",
    )
    offer.refresh_from_db()
    assert offer.state == S.DECLINED and offer.closed_at is not None
    assert (feedback.kind, feedback.reason_code, feedback.text, feedback.source) == (
        FeedbackKind.DECLINE,
        "too_expensive",
        "We can't justify it this quarter.",
        "portal",
    )
    assert (feedback.offer_id, feedback.account_id, feedback.contact_id) == (
        offer.pk,
        held.account.pk,
        world_a.contact.pk,
    )
    # Declining twice answers the first decline: one Feedback row, one event.
    again = decline_offer(world_a.tenant, offer=offer, reason_code="other", actor="customer")
    assert again.pk == feedback.pk
    assert Feedback.objects.filter(offer=offer).count() == 1
    assert OfferEvent.objects.filter(offer=offer, to_state=S.DECLINED).count() == 1


@pytest.mark.parametrize(
    ("reason", "text", "field"), [("because", "", "reason"), ("other", "x" * 4001, "text"), ("other", "a\x00b", "text")]
)
def test_an_invalid_decline_names_the_field_and_changes_nothing(held, world_a, reason, text, field):
    offer = make_offer(held, state=S.SENT)
    with pytest.raises(InvalidInput) as refused:
        decline_offer(world_a.tenant, offer=offer, reason_code=reason, text=text, actor="customer")
    assert field in refused.value.details
    offer.refresh_from_db()
    assert offer.state == S.SENT and not Feedback.objects.exists()


@pytest.mark.parametrize("state", [S.DRAFT, S.AWAITING_REVIEW, S.ACCEPTED, S.FULFILLED, S.EXPIRED, S.WITHDRAWN])
def test_only_an_offer_the_customer_has_can_be_declined(held, world_a, state):
    offer = make_offer(held, state=state)
    with pytest.raises(Conflict) as refused:
        decline_offer(world_a.tenant, offer=offer, reason_code="not_now", actor="customer")
    assert refused.value.code == "illegal_transition"
    assert not Feedback.objects.exists()


def test_a_contact_of_another_account_cannot_decline(held, world_a, world_b):
    offer = make_offer(held, state=S.SENT)
    with pytest.raises(InvalidInput):
        decline_offer(world_a.tenant, offer=offer, reason_code="not_now", actor="x", contact=world_b.contact)


# --- review and discount approval ----------------------------------------------------------------


def test_a_csm_reviews_an_offer_and_it_is_sent(held, world_a):
    offer = make_offer(held, state=S.AWAITING_REVIEW, requires_review=True, created_by_label="engine")
    reviewed = review_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"])
    assert reviewed.state == S.SENT
    assert (reviewed.reviewed_by, reviewed.sent_at is not None) == (world_a.staff["csm"], True)
    assert AuditEntry.objects.filter(tenant=world_a.tenant, action="offer.sent", object_id=str(offer.pk)).exists()
    assert review_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"]).state == S.SENT  # idempotent


@pytest.mark.parametrize("role", [Role.ANALYST, Role.PRODUCT_MANAGER])
def test_roles_without_the_review_capability_cannot_review_or_withdraw(held, world_a, role):
    offer = make_offer(held, state=S.AWAITING_REVIEW, requires_review=True)
    with pytest.raises(PermissionDenied) as refused:
        review_offer(world_a.tenant, offer=offer, actor=world_a.staff[role])
    assert refused.value.code == "no_capability"
    with pytest.raises(PermissionDenied):
        withdraw_offer(world_a.tenant, offer=offer, actor=world_a.staff[role])
    with pytest.raises(PermissionDenied):
        review_offer(world_a.tenant, offer=offer, actor="api-key:abc")
    offer.refresh_from_db()
    assert offer.state == S.AWAITING_REVIEW


def test_staff_of_another_tenant_cannot_review(held, world_a, world_b):
    offer = make_offer(held, state=S.AWAITING_REVIEW, requires_review=True)
    with pytest.raises(PermissionDenied):
        review_offer(world_a.tenant, offer=offer, actor=world_b.staff["owner"])


def test_the_person_who_built_an_offer_does_not_review_it(held, world_a):
    csm = world_a.staff["csm"]
    offer = make_offer(held, state=S.AWAITING_REVIEW, requires_review=True, created_by_label=csm.email)
    with pytest.raises(PermissionDenied) as refused:
        review_offer(world_a.tenant, offer=offer, actor=csm)
    assert refused.value.code == "four_eyes"
    assert review_offer(world_a.tenant, offer=offer, actor=world_a.staff["owner"]).state == S.SENT


def test_reviewing_an_offer_that_is_not_awaiting_review_is_refused(held, world_a):
    offer = make_offer(held, state=S.DRAFT)
    with pytest.raises(Conflict) as refused:
        review_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"])
    assert refused.value.code == "illegal_transition"


def test_an_out_of_policy_discount_waits_for_the_approver_then_the_offer_goes_out(held, world_a):
    offer = make_offer(
        held,
        state=S.AWAITING_REVIEW,
        discount={"percent": "40", "amount": 11880, "explanation": "Launch", "within_policy": False, "variant": "x"},
        discount_approval_needed=True,
        created_by_label=world_a.staff["csm"].email,
    )
    with pytest.raises(Conflict) as waiting:
        review_offer(world_a.tenant, offer=offer, actor=world_a.staff["owner"])
    assert waiting.value.code == "approval_needed"
    with pytest.raises(Conflict) as not_yet:
        accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")
    assert not_yet.value.code == "illegal_transition"
    # The policy names the owner by default: a product manager may not approve.
    with pytest.raises(PermissionDenied):
        approve_offer_discount(world_a.tenant, offer=offer, actor=world_a.staff["product_manager"])

    approved = approve_offer_discount(world_a.tenant, offer=offer, actor=world_a.staff["owner"])

    assert (approved.discount_approved_by, approved.state) == (world_a.staff["owner"], S.SENT)
    entry = AuditEntry.objects.get(tenant=world_a.tenant, action="offer.discount_approved")
    assert entry.actor == world_a.staff["owner"] and entry.after["role"] == "owner"
    assert approve_offer_discount(world_a.tenant, offer=offer, actor=world_a.staff["owner"]).pk == offer.pk


def test_the_policys_exception_approver_role_may_approve_a_discount(held, world_a):
    DiscountPolicy.objects.create(
        tenant=world_a.tenant,
        key="policy",
        name="Policy",
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
        exception_approver_role=Role.PRODUCT_MANAGER,
    )
    offer = make_offer(held, state=S.AWAITING_REVIEW, requires_review=True, discount_approval_needed=True)
    with pytest.raises(PermissionDenied):
        approve_offer_discount(world_a.tenant, offer=offer, actor=world_a.staff["csm"])
    approved = approve_offer_discount(world_a.tenant, offer=offer, actor=world_a.staff["product_manager"])
    # Approved, but the CSM review the settings asked for still stands.
    assert (approved.discount_approved_at is not None, approved.state) == (True, S.AWAITING_REVIEW)
    assert review_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"]).state == S.SENT


def test_accepting_needs_the_approval_even_once_sent(held, world_a):
    offer = make_offer(held, state=S.SENT, discount_approval_needed=True)
    with pytest.raises(Conflict) as refused:
        accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")
    assert refused.value.code == "approval_needed"


# --- acceptance refusals before any call to Stripe -------------------------------------------------


def test_an_expired_offer_cannot_be_accepted(held, world_a):
    offer = make_offer(held, state=S.VIEWED, expires_in=timedelta(seconds=-1))
    with pytest.raises(Conflict) as refused:
        accept_offer(world_a.tenant, offer=offer, option_key="business-month", actor="customer")
    assert refused.value.code == "offer_expired"
    assert not PlanChange.objects.exists()


def test_accepting_an_option_the_offer_lacks_names_the_field(held, world_a):
    offer = make_offer(held, state=S.SENT)
    with pytest.raises(InvalidInput) as refused:
        accept_offer(world_a.tenant, offer=offer, option_key="enterprise-month", actor="customer")
    assert "option" in refused.value.details
    assert "business-month" in refused.value.details["option"][0]


def test_a_payment_can_be_retried_only_on_an_accepted_offer(held, world_a):
    offer = make_offer(held, state=S.VIEWED)
    with pytest.raises(Conflict) as refused:
        retry_offer_payment(world_a.tenant, offer=offer, actor="customer")
    assert refused.value.code == "wrong_state"


# --- withdrawal ---------------------------------------------------------------------------------


def test_a_csm_withdraws_an_offer(held, world_a):
    offer = make_offer(held, state=S.VIEWED)
    withdrawn = withdraw_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"], reason="wrong target")
    assert (withdrawn.state, withdrawn.closed_at is not None) == (S.WITHDRAWN, True)
    assert OfferEvent.objects.get(offer=offer, to_state=S.WITHDRAWN).note == "wrong target"
    assert withdraw_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"]).state == S.WITHDRAWN


@pytest.mark.parametrize("pc_state", [PlanChangeState.PENDING, PlanChangeState.SUBMITTED, PlanChangeState.SETTLED])
def test_an_offer_whose_payment_is_with_stripe_cannot_be_withdrawn(held, world_a, pc_state):
    offer = make_offer(held, state=S.ACCEPTED, plan_change=plan_change(held, state=pc_state))
    with pytest.raises(Conflict) as refused:
        withdraw_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"])
    assert refused.value.code == "wrong_state"


# --- fulfilment ---------------------------------------------------------------------------------


def test_a_settled_plan_change_fulfils_its_offer_once_with_the_amount_charged(held, world_a):
    pc = plan_change(held, state=PlanChangeState.SETTLED, charged=12345)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc, accepted_option="business-month")
    fulfilled = fulfil_offer(world_a.tenant, offer=offer, plan_change=pc)
    assert (fulfilled.state, fulfilled.amount_charged) == (S.FULFILLED, 12345)
    fulfil_offer(world_a.tenant, offer=offer, plan_change=pc)
    assert OfferEvent.objects.filter(offer=offer, to_state=S.FULFILLED).count() == 1


def test_a_plan_change_not_settled_fulfils_nothing(held, world_a):
    pc = plan_change(held, state=PlanChangeState.SUBMITTED)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc)
    assert fulfil_offer(world_a.tenant, offer=offer, plan_change=pc).state == S.ACCEPTED


def test_a_settlement_after_the_offer_closed_is_recorded_not_fulfilled(held, world_a):
    pc = plan_change(held, state=PlanChangeState.SETTLED, charged=500)
    offer = make_offer(held, state=S.WITHDRAWN, plan_change=pc)
    assert fulfil_offer(world_a.tenant, offer=offer, plan_change=pc).state == S.WITHDRAWN
    assert AuditEntry.objects.filter(tenant=world_a.tenant, action="offer.settled_after_close").exists()


# --- the expiry sweep ------------------------------------------------------------------------------


def test_the_sweep_expires_due_offers_in_every_tenant_and_is_idempotent(world_a, world_b):
    held_a = holding(world_a.tenant, world_a.account)
    held_b = holding(world_b.tenant, world_b.account)
    due_a = make_offer(held_a, state=S.SENT, expires_in=timedelta(days=2))
    draft_a = make_offer(held_a, state=S.AWAITING_REVIEW, target="team", expires_in=timedelta(days=2))
    later_a = make_offer(held_a, state=S.VIEWED, target_kind="addon", target_key="sso", expires_in=timedelta(days=10))
    due_b = make_offer(held_b, state=S.VIEWED, expires_in=timedelta(days=1))
    declined_b = make_offer(held_b, state=S.DECLINED, target="team", expires_in=timedelta(days=1))

    assert expire_offers(now=timezone.now() + timedelta(days=1, hours=-1)) == 0
    three_days = timezone.now() + timedelta(days=3)
    assert expire_offers(now=three_days) == 3
    assert expire_offers(now=three_days) == 0

    states = dict(Offer.objects.values_list("pk", "state"))
    assert states == {
        due_a.pk: S.EXPIRED,
        draft_a.pk: S.EXPIRED,
        later_a.pk: S.VIEWED,
        due_b.pk: S.EXPIRED,
        declined_b.pk: S.DECLINED,
    }
    event = OfferEvent.objects.get(offer=due_b, to_state=S.EXPIRED)
    assert (event.tenant_id, event.actor_label, event.at) == (world_b.tenant.pk, "expiry-sweep", three_days)


def test_an_accepted_offer_with_its_payment_in_flight_never_expires(held, world_a):
    later = timezone.now() + timedelta(days=30)
    in_flight = make_offer(held, state=S.ACCEPTED, plan_change=plan_change(held, state=PlanChangeState.SUBMITTED))
    assert expire_offers_for_tenant(world_a.tenant, now=later) == 0
    in_flight.refresh_from_db()
    assert in_flight.state == S.ACCEPTED


def test_the_sweep_fulfils_an_accepted_offer_whose_settlement_signal_was_missed(held, world_a):
    pc = plan_change(held, state=PlanChangeState.SETTLED, charged=4321)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc, expires_in=timedelta(days=-1))
    assert expire_offers_for_tenant(world_a.tenant) == 0
    offer.refresh_from_db()
    assert (offer.state, offer.amount_charged) == (S.FULFILLED, 4321)


def test_an_accepted_offer_without_a_payment_expires(held, world_a):
    offer = make_offer(held, state=S.ACCEPTED, expires_in=timedelta(days=-1))
    assert expire_offers_for_tenant(world_a.tenant) == 1
    offer.refresh_from_db()
    assert offer.state == S.EXPIRED


# --- opening, the settlement signal, failed payments ------------------------------------------------


def test_opening_a_sent_offer_marks_it_viewed_and_keeps_the_estimate_when_stripe_cannot_quote(held, world_a):
    offer = make_offer(held, state=S.SENT)  # this tenant has no Stripe keys: no Stripe quote can be made
    opened = open_offer(world_a.tenant, offer=offer, actor="customer")
    assert (opened.state, opened.quote["source"], opened.plan_change_id) == (S.VIEWED, "estimate", None)
    assert open_offer(world_a.tenant, offer=offer, actor="customer").state == S.VIEWED
    assert OfferEvent.objects.filter(offer=offer, to_state=S.VIEWED).count() == 1


@pytest.mark.parametrize("state", [S.DRAFT, S.DECLINED, S.EXPIRED])
def test_opening_an_offer_that_is_not_out_changes_nothing(held, world_a, state):
    offer = make_offer(held, state=state)
    assert open_offer(world_a.tenant, offer=offer, actor="customer").state == state


def test_billings_settlement_signal_fulfils_the_offer_that_asked_for_it(held, world_a):
    from billing.signals import plan_change_settled

    pc = plan_change(held, state=PlanChangeState.SETTLED, charged=777)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc, accepted_option="business-month")
    plan_change_settled.send(
        sender=PlanChange, tenant_id=world_a.tenant.pk, account_id=held.account.pk, plan_change_id=pc.pk, reference=""
    )
    offer.refresh_from_db()
    assert (offer.state, offer.amount_charged) == (S.FULFILLED, 777)


def test_a_settlement_signal_for_another_tenants_plan_change_fulfils_nothing(held, world_a, world_b):
    from billing.signals import plan_change_settled

    pc = plan_change(held, state=PlanChangeState.SETTLED, charged=777)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc)
    plan_change_settled.send(
        sender=PlanChange,
        tenant_id=world_b.tenant.pk,
        account_id=held.account.pk,
        plan_change_id=pc.pk,
        reference=f"offer:{offer.pk}",
    )
    offer.refresh_from_db()
    assert offer.state == S.ACCEPTED


def test_withdrawing_an_offer_whose_payment_failed_cancels_its_plan_change(held, world_a):
    pc = plan_change(held, state=PlanChangeState.FAILED)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc)
    assert withdraw_offer(world_a.tenant, offer=offer, actor=world_a.staff["csm"]).state == S.WITHDRAWN
    pc.refresh_from_db()
    assert pc.state == PlanChangeState.CANCELED  # nothing can be paid for an offer that is gone


def test_an_accepted_offer_whose_payment_failed_expires_and_its_plan_change_is_cancelled(held, world_a):
    pc = plan_change(held, state=PlanChangeState.FAILED)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc, expires_in=timedelta(days=1))
    assert expire_offers_for_tenant(world_a.tenant, now=timezone.now() + timedelta(days=2)) == 1
    offer.refresh_from_db()
    pc.refresh_from_db()
    assert (offer.state, pc.state) == (S.EXPIRED, PlanChangeState.CANCELED)


def test_retrying_a_payment_that_is_in_flight_changes_nothing(held, world_a):
    pc = plan_change(held, state=PlanChangeState.SUBMITTED)
    offer = make_offer(held, state=S.ACCEPTED, plan_change=pc)
    assert retry_offer_payment(world_a.tenant, offer=offer, actor="customer").plan_change_id == pc.pk
    pc.refresh_from_db()
    assert pc.state == PlanChangeState.SUBMITTED
