"""Writing trigger rules and moving them through draft -> awaiting approval -> live -> retired.

The catalog's four-eyes pattern (catalog/services/governance.py): whoever wrote or submitted
a rule may not approve it; owners may approve anything. Approval makes the rule live.
Every write validates the condition against the tenant's catalog and is audited.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Capability, Membership, Role, Tenant, User
from accounts.services import record_audit, snapshot
from upgrades.rules.conditions import ConditionError, parse_condition
from upgrades.rules.data import load_rule_catalog
from upgrades.rules.errors import Conflict, InvalidInput, PermissionDenied, RulesErrorCode
from upgrades.rules.models import RuleState, TargetKind, TriggerRule

EDITABLE = (
    "key",
    "name",
    "description",
    "condition",
    "signal_kind",
    "target_kind",
    "target_key",
    "priority",
    "cooldown_days",
    "requires_csm_review",
)
GOVERNANCE = ("state", "submitted_by_id", "submitted_at", "approved_by_id", "approved_at", "live_at", "retired_at")


def _membership(tenant: Tenant, actor: User) -> Membership | None:
    return Membership.objects.for_tenant(tenant).filter(user=actor).first() if isinstance(actor, User) else None


def _require(tenant: Tenant, actor: User, doing: str) -> Membership | None:
    if isinstance(actor, User) and actor.is_superuser:
        return _membership(tenant, actor)
    membership = _membership(tenant, actor)
    if membership is None or not membership.can(Capability.EDIT_RULES):
        raise PermissionDenied(
            f"You may not {doing}: that needs the '{Capability.EDIT_RULES.label}' permission.",
            code=RulesErrorCode.NO_CAPABILITY,
        )
    return membership


def _lock(rule: TriggerRule) -> TriggerRule:
    return TriggerRule.objects.select_for_update().get(pk=rule.pk, tenant_id=rule.tenant_id)


def _require_state(rule: TriggerRule, *states: str, doing: str) -> None:
    if rule.state not in states:
        wanted = " or ".join(RuleState(s).label.lower() for s in states)
        raise Conflict(
            f"Cannot {doing} rule {rule.name}: it is {rule.get_state_display().lower()}, not {wanted}.",
            code=RulesErrorCode.WRONG_STATE,
            details={"state": rule.state},
        )


def validate_condition(tenant: Tenant, condition: Any) -> dict[str, Any]:
    """The canonical JSON of a valid condition, or InvalidInput with every error and where it is."""
    try:
        tree = parse_condition(condition, load_rule_catalog(tenant))
    except ConditionError as exc:
        raise InvalidInput(
            str(exc.errors[0]["message"]) if len(exc.errors) == 1 else f"The rule has {len(exc.errors)} problems.",
            code=RulesErrorCode.INVALID_CONDITION,
            details={"condition": exc.errors},
        ) from exc
    return tree.to_json()


def _clean(tenant: Tenant, rule: TriggerRule) -> None:
    rule.condition = validate_condition(tenant, rule.condition)
    if rule.target_kind in (TargetKind.TIER, TargetKind.ADDON, TargetKind.BUNDLE) and not rule.target_key:
        raise InvalidInput("Name the tier, add-on or bundle to suggest.", details={"target_key": ["Required."]})
    if rule.target_kind in (TargetKind.NONE, TargetKind.LOWEST_FIT):
        rule.target_key = ""
    try:
        rule.full_clean(exclude=["tenant"], validate_unique=False)
    except ValidationError as exc:
        first = next(iter(exc.message_dict.items()))
        raise InvalidInput(f"{first[0]}: {first[1][0]}", code=RulesErrorCode.INVALID, details=exc.message_dict) from exc


@transaction.atomic
def create_rule(tenant: Tenant, *, actor: User, **fields: Any) -> TriggerRule:
    _require(tenant, actor, "write trigger rules")
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", code=RulesErrorCode.INVALID)
    rule = TriggerRule(tenant=tenant, created_by=actor, contributor_ids=[actor.pk], **fields)
    _clean(tenant, rule)
    if TriggerRule.objects.for_tenant(tenant).filter(key=rule.key).exists():
        raise InvalidInput(f"A rule with key {rule.key} exists.", code=RulesErrorCode.DUPLICATE_KEY,
                           details={"key": ["Already used."]})  # fmt: skip
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError as exc:
        raise InvalidInput(f"A rule with key {rule.key} exists.", code=RulesErrorCode.DUPLICATE_KEY) from exc
    record_audit(tenant, actor=actor, action="triggerrule.created", obj=rule, after=snapshot(rule, EDITABLE))
    return rule


@transaction.atomic
def update_rule(tenant: Tenant, *, rule: TriggerRule, actor: User, **fields: Any) -> TriggerRule:
    _require(tenant, actor, "edit trigger rules")
    rule = _lock(rule)
    if rule.state != RuleState.DRAFT:
        raise Conflict(f"Rule {rule.name} is {rule.get_state_display().lower()}; only drafts can be edited.",
                       code=RulesErrorCode.NOT_DRAFT)  # fmt: skip
    before = snapshot(rule, EDITABLE)
    for name, value in fields.items():
        if name not in EDITABLE or name == "key":
            raise InvalidInput(f"{name} cannot be changed.", code=RulesErrorCode.INVALID)
        setattr(rule, name, value)
    _clean(tenant, rule)
    if actor.pk not in rule.contributor_ids:
        rule.contributor_ids = [*rule.contributor_ids, actor.pk]
    rule.save()
    record_audit(tenant, actor=actor, action="triggerrule.updated", obj=rule, before=before,
                 after=snapshot(rule, EDITABLE))  # fmt: skip
    return rule


def _transition(tenant: Tenant, rule: TriggerRule, actor: User, verb: str, before: dict, reason: str = "") -> None:
    after = snapshot(rule, GOVERNANCE)
    if reason:
        after["reason"] = reason
    record_audit(tenant, actor=actor, action=f"triggerrule.{verb}", obj=rule, before=before, after=after)


@transaction.atomic
def submit_rule(tenant: Tenant, *, rule: TriggerRule, actor: User) -> TriggerRule:
    _require(tenant, actor, "submit trigger rules")
    rule = _lock(rule)
    _require_state(rule, RuleState.DRAFT, doing="submit")
    validate_condition(tenant, rule.condition)
    before = snapshot(rule, GOVERNANCE)
    rule.state, rule.submitted_by, rule.submitted_at = RuleState.AWAITING_APPROVAL, actor, timezone.now()
    rule.save()
    _transition(tenant, rule, actor, "submitted", before)
    return rule


def four_eyes_refusal(rule: TriggerRule, actor: User, membership: Membership | None) -> str | None:
    """Why `actor` may not approve `rule`, or None (owners and superusers may approve anything)."""
    if actor.is_superuser or (membership is not None and membership.role == Role.OWNER):
        return None
    if actor.pk == rule.created_by_id or actor.pk in (rule.contributor_ids or []):
        return f"You wrote rule {rule.name}, so someone else must approve it: four eyes on every rule."
    if actor.pk == rule.submitted_by_id:
        return f"You submitted rule {rule.name}, so someone else must approve it."
    return None


@transaction.atomic
def approve_rule(tenant: Tenant, *, rule: TriggerRule, actor: User) -> TriggerRule:
    """A second person's approval makes the rule live."""
    membership = _require(tenant, actor, "approve trigger rules")
    rule = _lock(rule)
    _require_state(rule, RuleState.AWAITING_APPROVAL, doing="approve")
    refusal = four_eyes_refusal(rule, actor, membership)
    if refusal:
        raise PermissionDenied(refusal, code=RulesErrorCode.FOUR_EYES)
    validate_condition(tenant, rule.condition)
    before = snapshot(rule, GOVERNANCE)
    now = timezone.now()
    rule.state, rule.approved_by, rule.approved_at, rule.live_at = RuleState.LIVE, actor, now, now
    rule.save()
    _transition(tenant, rule, actor, "approved", before)
    return rule


@transaction.atomic
def return_rule_to_draft(tenant: Tenant, *, rule: TriggerRule, actor: User, reason: str = "") -> TriggerRule:
    _require(tenant, actor, "send trigger rules back to draft")
    rule = _lock(rule)
    _require_state(rule, RuleState.AWAITING_APPROVAL, doing="return to draft")
    before = snapshot(rule, GOVERNANCE)
    rule.state = RuleState.DRAFT
    rule.submitted_by = rule.submitted_at = rule.approved_by = rule.approved_at = None
    rule.save()
    _transition(tenant, rule, actor, "returned_to_draft", before, reason=reason)
    return rule


@transaction.atomic
def retire_rule(tenant: Tenant, *, rule: TriggerRule, actor: User, reason: str = "") -> TriggerRule:
    _require(tenant, actor, "retire trigger rules")
    rule = _lock(rule)
    _require_state(rule, RuleState.LIVE, doing="retire")
    before = snapshot(rule, GOVERNANCE)
    rule.state, rule.retired_at = RuleState.RETIRED, timezone.now()
    rule.save()
    _transition(tenant, rule, actor, "retired", before, reason=reason)
    return rule


TRANSITIONS = {
    "submit": submit_rule,
    "approve": approve_rule,
    "return_to_draft": return_rule_to_draft,
    "retire": retire_rule,
}
