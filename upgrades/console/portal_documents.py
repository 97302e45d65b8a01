"""The console's proposals as customer documents for the portal (upgrades.offers.documents; registered in
upgrades.apps ready()). Only shared proposals (and those the customer decided on) are listed; refs are opaque."""

from __future__ import annotations

from django.utils.crypto import salted_hmac

from accounts.errors import InvalidInput, NotFound
from accounts.models import Contact, CustomerAccount, Tenant
from billing.models import PlanChange
from upgrades.console.models import Proposal, ProposalState
from upgrades.console.selectors import proposal_options, shared_proposals
from upgrades.console.services.proposals import accept_proposal, decline_proposal, retry_proposal_payment
from upgrades.offers.documents import CustomerDocument, DocumentOption, PathRow
from upgrades.offers.models import DeclineReason

KIND = "proposal"
REF_SALT = "tierwise.portal.proposal-ref"
ACTOR = "customer (portal)"


def proposal_ref(proposal: Proposal) -> str:
    return salted_hmac(REF_SALT, f"proposal:{proposal.tenant_id}:{proposal.pk}").hexdigest()[:24]


def _state(proposal: Proposal, pc: PlanChange | None) -> tuple[str, str]:
    if proposal.state == ProposalState.SHARED:
        return "open", "Waiting for your decision"
    if proposal.state == ProposalState.DECLINED:
        return "declined", "Declined"
    if proposal.state == ProposalState.FULFILLED:
        return "settled", "Accepted: your plan has changed"
    if pc is not None and pc.state in ("failed", "canceled"):
        return "failed", "Accepted: the payment didn't go through"
    return "accepted", "Accepted: taking the payment"


def _document(tenant: Tenant, proposal: Proposal) -> CustomerDocument:
    pc = PlanChange.objects.for_tenant(tenant).filter(pk=proposal.plan_change_id).first()
    state, text = _state(proposal, pc)
    options = []
    for o in proposal_options(tenant, proposal):
        discount = o.option.get("discount") or {}
        rows = [
            PathRow(
                date=row["date"],
                kind=row.get("kind", ""),
                list_amount=int(row.get("list_amount", row["amount"])),
                discount_amount=int(row.get("discount_amount", 0)),
                amount=int(row["amount"]),
            )
            for row in o.rows  # type: ignore[attr-defined]
        ]
        options.append(
            DocumentOption(
                key=o.key,
                label=o.label or o.key,
                seats=o.seats,
                interval=o.interval,
                term_years=o.term_years,
                total_amount=o.total_amount,
                discount_text=discount.get("explanation", "") if discount else "",
                rows=rows,
                roi=o.roi or {},
            )
        )
    accepted = proposal.accepted_option.key if proposal.accepted_option_id and proposal.accepted_option else ""
    return CustomerDocument(
        ref=proposal_ref(proposal),
        kind=KIND,
        title=proposal.title,
        intro=proposal.intro,
        state=state,
        state_text=text,
        currency=proposal.currency,
        shared_at=proposal.shared_at,
        options=options,
        evidence=str((proposal.evidence or {}).get("sentence", "")),
        outcomes=[str(v) for v in (proposal.outcomes or {}).values() if isinstance(v, str)],
        accepted_option=accepted,
        charged_amount=pc.charged_amount if pc is not None and proposal.state == ProposalState.FULFILLED else None,
        failure_message=(pc.failure_message or "") if pc is not None and state == "failed" else "",
        plan_change_id=pc.pk if pc is not None else None,
    )


def _find(tenant: Tenant, account: CustomerAccount, ref: str) -> Proposal:
    for proposal in shared_proposals(tenant, account):
        if proposal_ref(proposal) == ref:
            return proposal
    raise NotFound("No such proposal.")


class ProposalDocuments:
    def list_for_account(self, tenant: Tenant, account: CustomerAccount) -> list[CustomerDocument]:
        return [_document(tenant, p) for p in shared_proposals(tenant, account)]

    def get(self, tenant: Tenant, account: CustomerAccount, ref: str) -> CustomerDocument | None:
        try:
            return _document(tenant, _find(tenant, account, ref))
        except NotFound:
            return None

    def accept(
        self, tenant: Tenant, account: CustomerAccount, ref: str, option_key: str, contact: Contact | None
    ) -> CustomerDocument:
        proposal = _find(tenant, account, ref)
        accepted = accept_proposal(tenant, proposal=proposal, option_key=option_key, actor=ACTOR)
        return _document(tenant, accepted)

    def decline(
        self, tenant: Tenant, account: CustomerAccount, ref: str, reason: str, text: str, contact: Contact | None
    ) -> CustomerDocument:
        if reason not in DeclineReason.values:
            raise InvalidInput("Choose a reason.", details={"reason": ["Choose one of the reasons."]})
        proposal = _find(tenant, account, ref)
        label = DeclineReason(reason).label
        declined = decline_proposal(
            tenant, proposal=proposal, actor=ACTOR, reason=f"{label}: {text.strip()}" if text.strip() else label
        )
        return _document(tenant, declined)

    def retry_payment(
        self, tenant: Tenant, account: CustomerAccount, ref: str, contact: Contact | None
    ) -> CustomerDocument:
        proposal = _find(tenant, account, ref)
        return _document(tenant, retry_proposal_payment(tenant, proposal=proposal, actor=ACTOR))


PROVIDER = ProposalDocuments()
