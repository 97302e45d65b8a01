"""Proposals: build (options priced with their price path), route a discount beyond policy for approval,
approve, share to the customer's portal, accept there (billing's quote_plan_change + confirm_plan_change,
like an offer), decline, withdraw, fulfil when billing settles. The only writer of Proposal.state."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from accounts.models import CustomerAccount, Membership, Role, Tenant, User
from accounts.services import Actor, record_audit
from billing.models import License, PlanChange, PlanChangeState
from billing.selectors import current_discount_policy, get_license_for_account
from billing.services.plan_changes import confirm_plan_change, quote_plan_change, retry_plan_change
from catalog.models import Price
from upgrades.console.models import OPEN_PROPOSAL_STATES, Proposal, ProposalKind, ProposalOption, ProposalState
from upgrades.console.services.holdout import require_not_held_out
from upgrades.console.services.options import OptionRequest, price_option
from upgrades.console.services.renewals import renewal_outcomes
from upgrades.offers.documents import document_link
from upgrades.rules.models import Signal, SignalState

S = ProposalState
_NEXT = {
    S.DRAFT: (S.AWAITING_APPROVAL, S.READY, S.WITHDRAWN),
    S.AWAITING_APPROVAL: (S.READY, S.WITHDRAWN),
    S.READY: (S.SHARED, S.WITHDRAWN),
    S.SHARED: (S.ACCEPTED, S.DECLINED, S.WITHDRAWN),
    S.ACCEPTED: (S.FULFILLED,),
}
# Plain strings (a TextChoices member is its value; typed as str for mypy without the Django plugin).
ALLOWED: dict[str, set[str]] = {str(k): {str(t) for t in v} for k, v in _NEXT.items()}
REFERENCE = "proposal:"


def _transition(tenant: Tenant, proposal: Proposal, to: str, *, actor: Actor, fields: dict[str, Any] | None = None):
    if to not in ALLOWED.get(proposal.state, set()):
        raise Conflict(f"A proposal {proposal.get_state_display().lower()} cannot become {to}.", code="invalid_state")
    before = proposal.state
    proposal.state = to
    for name, value in (fields or {}).items():
        setattr(proposal, name, value)
    proposal.save()
    record_audit(
        tenant, actor=actor, action=f"proposal.{to}", obj=proposal, before={"state": before}, after={"state": to}
    )
    return proposal


def account_evidence(tenant: Tenant, account: CustomerAccount) -> dict[str, Any]:
    """The newest open signal's evidence (the reason to propose), or nothing."""
    signal = (
        Signal.objects.for_tenant(tenant)
        .filter(account=account, state=SignalState.OPEN)
        .order_by("-created_at")
        .first()
    )
    if signal is None:
        return {}
    return {**(signal.evidence or {}), "signal": signal.pk, "kind": signal.kind}


def build_proposal(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    actor: Actor,
    options: Sequence[OptionRequest],
    title: str = "",
    intro: str = "",
    kind: str = str(ProposalKind.UPGRADE),
    discount_percent: Decimal | None = None,
    outcomes: dict[str, Any] | None = None,
    now=None,
) -> Proposal:
    """A draft proposal with its options priced. A discount beyond policy is recorded and needs approval."""
    if account.tenant_id != tenant.pk:
        raise NotFound("No such account.")
    if not options:
        raise InvalidInput("A proposal needs an option.", details={"options": ["Add at least one option."]})
    if kind not in ProposalKind.values:
        raise InvalidInput("Unknown kind.", details={"kind": ["upgrade or renewal."]})
    require_not_held_out(tenant, account.pk, doing="make a proposal")
    license = get_license_for_account(tenant, account)
    if license is None:
        raise InvalidInput(
            "The account has no licence.", details={"account": ["Propose to an account with a licence."]}
        )
    evidence = account_evidence(tenant, account)
    if kind == ProposalKind.RENEWAL and outcomes is None:
        outcomes = renewal_outcomes(tenant, account)
    priced = [
        price_option(
            tenant,
            account=account,
            license=license,
            req=req,
            discount_percent=discount_percent,
            is_renewal=kind == ProposalKind.RENEWAL,
            evidence=evidence,
            now=now,
        )
        for req in options
    ]
    keys = [p.option["key"] for p in priced]
    if len(set(keys)) != len(keys):
        raise InvalidInput("Two options are the same.", details={"options": ["Each option must differ."]})
    beyond = [p for p in priced if p.option["discount"] and not p.option["discount"]["within_policy"]]
    policy = current_discount_policy(tenant)
    percent = discount_percent if discount_percent is not None else max((p.policy_percent for p in priced), default=0)
    loyalty = {}
    if kind == ProposalKind.RENEWAL and policy is not None:
        loyal = Decimal(policy.loyalty_percent)
        loyalty = {
            "percent": f"{loyal:.2f}",
            "text": f"Renew for two years or more and the policy adds {loyal.normalize():f} % for loyalty.",
        }
    with transaction.atomic():
        proposal = Proposal.objects.create(
            tenant=tenant,
            account=account,
            license=license,
            kind=kind,
            title=title or f"{'Renewal' if kind == ProposalKind.RENEWAL else 'Proposal'} for {account.name}",
            intro=intro,
            currency=license.currency,
            evidence=evidence,
            outcomes=outcomes or {},
            loyalty=loyalty,
            discount_percent=percent,
            discount_explanation="; ".join(
                sorted({p.option["discount"]["explanation"] for p in priced if p.option["discount"]})
            ),
            policy_percent=min((p.policy_percent for p in priced), default=Decimal(0)),
            approval_needed=bool(beyond),
            approver_role=(policy.exception_approver_role if policy else Role.OWNER) if beyond else "",
            created_by=actor if isinstance(actor, User) else None,
        )
        ProposalOption.objects.bulk_create(
            [
                ProposalOption(
                    tenant=tenant,
                    proposal=proposal,
                    position=i,
                    key=p.option["key"],
                    label=p.option["label"],
                    tier_key=p.option["tier"],
                    addon_keys=p.option["addons"],
                    seats=p.option["seats"],
                    interval=p.option["interval"],
                    term_years=p.option["term_years"],
                    option=p.option,
                    price_path=p.path,
                    total_amount=p.total,
                    roi=p.roi,
                    quote=p.quote,
                )
                for i, p in enumerate(priced)
            ]
        )
        record_audit(
            tenant,
            actor=actor,
            action="proposal.create",
            obj=proposal,
            after={"options": keys, "discount_percent": str(percent)},
        )
    return proposal


def submit_proposal(tenant: Tenant, *, proposal: Proposal, actor: Actor) -> Proposal:
    """Draft -> ready, or -> awaiting approval when a discount is beyond policy (routed to the approver role)."""
    to = str(S.AWAITING_APPROVAL if proposal.approval_needed and proposal.approved_at is None else S.READY)
    return _transition(tenant, proposal, to, actor=actor)


def can_approve(membership: Membership | None, proposal: Proposal) -> bool:
    if membership is None:
        return False
    return membership.role in (Role.OWNER, proposal.approver_role or Role.OWNER)


def approve_proposal(tenant: Tenant, *, proposal: Proposal, membership: Membership | None, note: str = "") -> Proposal:
    if proposal.state != S.AWAITING_APPROVAL:
        raise Conflict("Only a proposal awaiting approval can be approved.", code="invalid_state")
    if not can_approve(membership, proposal):
        raise PermissionDenied(f"Only a {proposal.approver_role or 'owner'} may approve a discount beyond policy.")
    user = membership.user  # type: ignore[union-attr]
    if proposal.created_by_id == user.pk:
        raise PermissionDenied("A second person approves a discount beyond policy.")
    return _transition(
        tenant,
        proposal,
        str(S.READY),
        actor=user,
        fields={"approved_by": user, "approved_at": timezone.now(), "approval_note": note[:300]},
    )


def share_proposal(tenant: Tenant, *, proposal: Proposal, actor: Actor) -> Proposal:
    require_not_held_out(tenant, proposal.account_id, doing="share a proposal")
    if proposal.state == S.DRAFT:
        submit_proposal(tenant, proposal=proposal, actor=actor)
    if proposal.state == S.AWAITING_APPROVAL:
        raise Conflict("The discount beyond policy waits for approval.", code="approval_needed")
    return _transition(tenant, proposal, str(S.SHARED), actor=actor, fields={"shared_at": timezone.now()})


def withdraw_proposal(tenant: Tenant, *, proposal: Proposal, actor: Actor) -> Proposal:
    return _transition(tenant, proposal, str(S.WITHDRAWN), actor=actor, fields={"decided_at": timezone.now()})


def decline_proposal(tenant: Tenant, *, proposal: Proposal, actor: Actor, reason: str = "") -> Proposal:
    return _transition(
        tenant,
        proposal,
        str(S.DECLINED),
        actor=actor,
        fields={"decided_at": timezone.now(), "decline_reason": reason[:300]},
    )


def accept_proposal(tenant: Tenant, *, proposal: Proposal, option_key: str, actor: Actor) -> Proposal:
    """The customer accepts one option: billing quotes it in Stripe with the option's discount and term and
    confirms it. Refuses (quote_stale) when Stripe's amount due now differs from the price path's first row."""
    if proposal.state != S.SHARED:
        raise Conflict("Only a shared proposal can be accepted.", code="invalid_state")
    option = ProposalOption.objects.for_tenant(tenant).filter(proposal=proposal, key=option_key).first()
    if option is None:
        raise InvalidInput("No such option.", details={"option": ["Choose one of the proposal's options."]})
    license = License.objects.for_tenant(tenant).get(pk=proposal.license_id)
    ids = option.option["price_ids"]
    prices = {p.pk: p for p in Price.objects.for_tenant(tenant).filter(pk__in=ids)}
    discount = option.option.get("discount") or {}
    plan_change = quote_plan_change(
        tenant,
        license=license,
        target_price=prices[ids[0]],
        seats=option.seats,
        addon_prices=[prices[i] for i in ids[1:]],
        reference=f"{REFERENCE}{proposal.pk}",
        requested_by=actor,
        discount_percent=Decimal(discount["percent"]) if discount else None,
        discount_explanation=discount.get("explanation", ""),
        term_years=option.term_years,
        year_percents=discount.get("year_percents"),  # a ramp: billed by a subscription schedule after settlement
    )
    shown = option.price_path[0]["amount"] if option.price_path else None
    if shown is not None and plan_change.quote_amount_due != shown:
        raise Conflict(
            f"The price changed since the proposal was made: {plan_change.quote_amount_due} due today, not {shown}.",
            code="quote_stale",
        )
    plan_change = confirm_plan_change(tenant, plan_change=plan_change, actor=actor)
    return _transition(
        tenant,
        proposal,
        str(S.ACCEPTED),
        actor=actor,
        fields={"accepted_option": option, "plan_change": plan_change, "decided_at": timezone.now()},
    )


def customer_link(tenant: Tenant, *, proposal: Proposal, actor: Actor) -> str:
    """A signed, single-use link (7 days) that opens the customer's portal on this shared proposal, for the CSM to
    send; made for the account's first contact. Audited; every call makes a new link."""
    from upgrades.console.portal_documents import KIND, proposal_ref  # it imports this module: not at the top

    proposal = Proposal.objects.for_tenant(tenant).select_related("account").get(pk=proposal.pk)
    if proposal.state != S.SHARED:
        raise Conflict("Share the proposal first: only a shared proposal opens in the portal.", code="invalid_state",
                       details={"state": proposal.state})  # fmt: skip
    contact = proposal.account.contacts.order_by("pk").first()
    url = document_link(tenant, account=proposal.account, kind=KIND, ref=proposal_ref(proposal), contact=contact,
                        actor=actor)  # fmt: skip
    record_audit(tenant, actor=actor, action="proposal.link_made", obj=proposal,
                 after={"contact": contact.email if contact else ""})  # fmt: skip
    return url


def retry_proposal_payment(tenant: Tenant, *, proposal: Proposal, actor: Actor) -> Proposal:
    """After a failed payment (the customer fixed or changed their card): pay the same invoice again, never twice.

    A change Stripe discarded (its quote expired) is not retried here: the amounts may have moved, so the
    account manager makes a fresh proposal.
    """
    proposal = Proposal.objects.for_tenant(tenant).get(pk=proposal.pk)
    pc = PlanChange.objects.for_tenant(tenant).filter(pk=proposal.plan_change_id).first()
    if proposal.state != S.ACCEPTED or pc is None:
        raise Conflict(
            "This proposal has no payment to retry.", code="invalid_state", details={"state": proposal.state}
        )
    if pc.state != PlanChangeState.FAILED:
        return proposal  # in flight or settled: nothing to do
    if pc.failure_code == "quote_expired":
        raise Conflict("This price can no longer be charged; your account manager will send a fresh proposal.",
                       code="quote_expired")  # fmt: skip
    retry_plan_change(tenant, plan_change=pc, actor=actor)
    record_audit(tenant, actor=actor, action="proposal.payment_retried", obj=proposal, after={"plan_change": pc.pk})
    return proposal


def fulfil_settled(tenant: Tenant, *, plan_change_id: int, reference: str) -> Proposal | None:
    if not reference.startswith(REFERENCE):
        return None
    proposal = Proposal.objects.for_tenant(tenant).filter(plan_change_id=plan_change_id, state=S.ACCEPTED).first()
    if proposal is None:
        return None
    return _transition(tenant, proposal, str(S.FULFILLED), actor="billing")


def open_proposals(tenant: Tenant, account: CustomerAccount):
    return Proposal.objects.for_tenant(tenant).filter(account=account, state__in=OPEN_PROPOSAL_STATES)
