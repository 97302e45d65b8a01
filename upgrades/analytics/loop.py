"""Close the loop: "this packaging change answers this feedback".

A PM or the owner picks feedback rows (declines and survey answers on offers of one tier/add-on, optionally one
reason), tells those customers through messaging (category "upgrade": the cap and consent apply; one message per
contact, keyed by the cause) and may give their accounts early access: a CSM grant of that tier/add-on for at
most 30 days. One audit entry records the whole action.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from accounts.errors import InvalidInput, NotFound, PermissionDenied
from accounts.models import Contact, CustomerAccount, Role, Tenant, User
from accounts.services import record_audit
from billing.errors import Conflict
from billing.models import GrantKind
from billing.services.licenses import start_grant
from messaging.services import send_message
from upgrades.offers.models import Feedback, FeedbackKind, OfferTargetKind
from upgrades.offers.services.trials import resolve_target

TEMPLATE_KEY = "feedback-answered"  # a template of purpose decline_follow_up
MAX_EARLY_ACCESS_DAYS = 30
ALLOWED_ROLES = (Role.OWNER, Role.PRODUCT_MANAGER)


@dataclass
class LoopResult:
    cause: str
    feedback: int = 0
    messages: dict[str, int] = field(default_factory=dict)  # message state -> count
    no_contact: int = 0
    grants: int = 0
    grants_already_running: int = 0


def require_role(tenant: Tenant, actor: User) -> None:
    membership = actor.memberships.filter(tenant=tenant).first()
    if not (actor.is_superuser or (membership is not None and membership.role in ALLOWED_ROLES)):
        raise PermissionDenied("Only a product manager or the owner can answer feedback.")


def answerable_feedback(tenant: Tenant, *, target_kind: str, target_key: str, reason: str = ""):
    """Declines and survey answers on offers of this tier/add-on (and this decline reason, when given)."""
    rows = Feedback.objects.filter(
        tenant=tenant,
        kind__in=(FeedbackKind.DECLINE, FeedbackKind.SURVEY),
        offer__target_kind=target_kind,
        offer__target_key=target_key,
    ).select_related("account", "contact")
    return rows.filter(reason_code=reason) if reason else rows


def cause_for(target_kind: str, target_key: str, change: str) -> str:
    return f"feedback-answered:{target_kind}:{target_key}:{change}"[:200]


def _validate(target_kind: str, target_key: str, change: str, days: int | None) -> None:
    errors: dict[str, list[str]] = {}
    if target_kind not in (OfferTargetKind.TIER, OfferTargetKind.ADDON):
        errors["target_kind"] = ["One of tier, addon."]
    if not target_key:
        errors["target_key"] = ["Name the tier or add-on."]
    if not change.strip() or len(change) > 120:
        errors["change"] = ["Name the packaging change (1 to 120 characters)."]
    if days is not None and not 1 <= days <= MAX_EARLY_ACCESS_DAYS:
        errors["days"] = [f"Early access lasts 1 to {MAX_EARLY_ACCESS_DAYS} days."]
    if errors:
        raise InvalidInput("Invalid answer to feedback.", details=errors)


@transaction.atomic
def answer_feedback(
    tenant: Tenant,
    *,
    actor: User,
    target_kind: str,
    target_key: str,
    feedback_ids: list[int],
    change: str,
    days: int | None = None,
) -> LoopResult:
    """Tell the customers behind `feedback_ids` about `change`; with `days`, give their accounts early access."""
    require_role(tenant, actor)
    _validate(target_kind, target_key, change, days)
    ids = sorted(set(feedback_ids))
    if not ids:
        raise InvalidInput("Invalid answer to feedback.", details={"feedback": ["Pick at least one feedback row."]})
    rows = list(answerable_feedback(tenant, target_kind=target_kind, target_key=target_key).filter(pk__in=ids))
    if len(rows) != len(ids):
        raise NotFound("No such feedback.")
    target = resolve_target(tenant, target_kind=target_kind, target_key=target_key) if days else None
    result = LoopResult(cause=cause_for(target_kind, target_key, change.strip()), feedback=len(rows))
    contacts: dict[int, Contact] = {}
    accounts: dict[int, CustomerAccount] = {}
    for row in rows:
        accounts.setdefault(row.account_id, row.account)
        if row.contact is None:
            result.no_contact += 1
        else:
            contacts.setdefault(row.contact_id, row.contact)
    # The variables of the decline follow-up purpose: the tenant's live "feedback-answered" template renders them.
    context = {
        "offer": {"title": change.strip(), "tier": target_key, "url": ""},
        "evidence": [f"You told us about {target_key}; we changed it: {change.strip()}"],
    }
    for contact in contacts.values():
        message = send_message(
            tenant, contact=contact, template_key=TEMPLATE_KEY, cause=result.cause, context=context, category="upgrade"
        )
        result.messages[message.state] = result.messages.get(message.state, 0) + 1
    if target is not None:
        for account in accounts.values():
            try:
                with transaction.atomic():
                    start_grant(
                        tenant,
                        account=account,
                        kind=GrantKind.CSM_GRANT,
                        actor=actor,
                        days=days,
                        reason=f"Early access: {change.strip()}"[:200],
                        reference=result.cause[:64],
                        **({"tier": target} if target_kind == OfferTargetKind.TIER else {"addon": target}),
                    )
                result.grants += 1
            except Conflict:
                result.grants_already_running += 1
    record_audit(
        tenant,
        actor=actor,
        action="analytics.feedback_answered",
        after={
            "cause": result.cause,
            "feedback_ids": ids,
            "messages": result.messages,
            "no_contact": result.no_contact,
            "early_access_days": days,
            "grants": result.grants,
            "grants_already_running": result.grants_already_running,
        },
    )
    return result
