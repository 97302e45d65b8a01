"""Governance transitions: submit, approve (four eyes), publish, return to draft, retire, revise."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Capability, Membership, Tenant, User
from accounts.services import snapshot
from catalog import hooks
from catalog.errors import CatalogErrorCode, Conflict, InvalidInput, PermissionDenied
from catalog.models import (
    AddOn,
    Bundle,
    Entitlement,
    GovernanceState,
    Governed,
    Price,
    Product,
    Tier,
)
from catalog.services._base import (
    GOVERNANCE_FIELDS,
    M2M_FIELDS,
    G,
    TransitionResult,
    _action,
    _audit,
    _clean,
    _diff,
    _is_owner,
    _label,
    _lock,
    _require,
    _snap,
)
from catalog.services.rules import _refuse_on_issues

# --- Governance transitions ----------------------------------------------------------------


def _set_children_state(obj: Governed, **values: Any) -> None:
    if isinstance(obj, Tier | AddOn):
        obj.prices.update(**values)


def _transition_audit(
    tenant: Tenant, obj: Governed, actor: User, verb: str, before: dict[str, Any], reason: str = ""
) -> None:
    after = snapshot(obj, GOVERNANCE_FIELDS)
    if reason:
        after["reason"] = reason
    b, a = _diff(before, after)
    _audit(tenant, actor=actor, action=_action(obj, verb), obj=obj, before=b, after=a)


def _require_state(obj: Governed, *states: str, doing: str) -> None:
    if obj.state not in states:
        wanted = " or ".join(GovernanceState(s).label.lower() for s in states)
        raise Conflict(
            f"Cannot {doing} {_label(obj)}: it is {obj.get_state_display().lower()}, not {wanted}.",
            code=CatalogErrorCode.WRONG_STATE,
            details={"state": obj.state},
        )


@transaction.atomic
def submit_for_approval(tenant: Tenant, *, obj: G, actor: User) -> TransitionResult:
    """draft -> awaiting approval, once the item is complete and consistent."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "submit catalog drafts")
    obj = _lock(obj)
    _require_state(obj, GovernanceState.DRAFT, doing="submit")
    _refuse_on_issues(tenant, obj, doing="submit")
    before = snapshot(obj, GOVERNANCE_FIELDS)
    now = timezone.now()
    obj.state, obj.submitted_by, obj.submitted_at = GovernanceState.AWAITING_APPROVAL, actor, now
    obj.approved_by, obj.approved_at = None, None
    obj.save()
    _set_children_state(obj, state=GovernanceState.AWAITING_APPROVAL, submitted_by=actor, submitted_at=now)
    _transition_audit(tenant, obj, actor, "submitted", before)
    return TransitionResult(obj=obj)


def four_eyes_refusal(obj: Governed, actor: User, membership: Membership | None) -> str | None:
    """Why `actor` may not approve `obj`, or None. Owners (and platform superusers) may approve anything."""
    if _is_owner(actor, membership):
        return None
    if actor.pk == obj.created_by_id or actor.pk in (obj.contributor_ids or []):
        return (
            f"You wrote {_label(obj)}, so someone else must approve it: four eyes on every catalog change. "
            "Ask another product manager or an owner."
        )
    if actor.pk == obj.submitted_by_id:
        return f"You submitted {_label(obj)}, so someone else must approve it. Ask another product manager or an owner."
    return None


APPROVAL_COMMENT_MAX = 1000


@transaction.atomic
def approve(tenant: Tenant, *, obj: G, actor: User, comment: str = "") -> TransitionResult:
    """Record a second person's approval, with what they wrote next to Approve (stored and audited).

    The item stays awaiting approval until it is published.
    """
    comment = (comment or "").strip()
    if len(comment) > APPROVAL_COMMENT_MAX:
        raise InvalidInput(
            f"The approval comment is {len(comment)} characters; keep it to {APPROVAL_COMMENT_MAX}.",
            code=CatalogErrorCode.INVALID,
            details={"comment": [f"At most {APPROVAL_COMMENT_MAX} characters."]},
        )
    membership = _require(tenant, actor, Capability.APPROVE_CATALOG, "approve catalog changes")
    obj = _lock(obj)
    _require_state(obj, GovernanceState.AWAITING_APPROVAL, doing="approve")
    if obj.approved_at is not None:
        raise Conflict(
            f"{_label(obj).capitalize()} is already approved; publish it.", code=CatalogErrorCode.WRONG_STATE
        )
    refusal = four_eyes_refusal(obj, actor, membership)
    if refusal:
        raise PermissionDenied(refusal, code=CatalogErrorCode.FOUR_EYES)
    _refuse_on_issues(tenant, obj, doing="approve")
    before = snapshot(obj, GOVERNANCE_FIELDS)
    now = timezone.now()
    obj.approved_by, obj.approved_at, obj.approval_comment = actor, now, comment
    obj.save()
    _set_children_state(obj, approved_by=actor, approved_at=now, approval_comment=comment)
    _transition_audit(tenant, obj, actor, "approved", before)
    return TransitionResult(obj=obj)


@transaction.atomic
def return_to_draft(tenant: Tenant, *, obj: G, actor: User, reason: str = "") -> TransitionResult:
    """awaiting approval -> draft: the author withdraws it or a reviewer sends it back (with a reason)."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "send catalog items back to draft")
    obj = _lock(obj)
    _require_state(obj, GovernanceState.AWAITING_APPROVAL, doing="return to draft")
    before = snapshot(obj, GOVERNANCE_FIELDS)
    obj.state = GovernanceState.DRAFT
    obj.submitted_by = obj.submitted_at = obj.approved_by = obj.approved_at = None
    obj.approval_comment = ""
    obj.save()
    _set_children_state(
        obj,
        state=GovernanceState.DRAFT,
        submitted_by=None,
        submitted_at=None,
        approved_by=None,
        approved_at=None,
        approval_comment="",
    )
    _transition_audit(tenant, obj, actor, "returned_to_draft", before, reason=reason)
    return TransitionResult(obj=obj)


def _retire_one(tenant: Tenant, obj: Governed, actor: User, now: Any, *, reason: str) -> list[str]:
    """Retire one published row (and its prices); the warnings to show."""
    before = snapshot(obj, GOVERNANCE_FIELDS)
    obj.state, obj.retired_at = GovernanceState.RETIRED, now
    obj.save()
    _set_children_state(obj, state=GovernanceState.RETIRED, retired_at=now)
    _transition_audit(tenant, obj, actor, "retired", before, reason=reason)
    warnings = []
    if isinstance(obj, Tier):
        holders = hooks.count_holders(tenant, [obj.pk])
        if holders:
            warnings.append(
                f"{holders} active licence(s) still hold {obj.name} v{obj.version}. They keep their plan and price "
                "until they change it; new customers can no longer choose it."
            )
        bundles = Bundle.objects.for_tenant(tenant).filter(tier=obj, state=GovernanceState.PUBLISHED).count()
        if bundles:
            warnings.append(f"{bundles} published bundle(s) are built on {obj.name} v{obj.version}; revise them.")
    return warnings


@transaction.atomic
def publish(tenant: Tenant, *, obj: G, actor: User) -> TransitionResult:
    """Approved -> published. Publishing version N+1 retires the published version N of the same key."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "publish catalog changes")
    obj = _lock(obj)
    _require_state(obj, GovernanceState.AWAITING_APPROVAL, doing="publish")
    if obj.approved_at is None:
        raise Conflict(
            f"{_label(obj).capitalize()} is not approved yet; a second person must approve it first.",
            code=CatalogErrorCode.NOT_APPROVED,
        )
    _refuse_on_issues(tenant, obj, doing="publish", for_publish=True)
    model = type(obj)
    now = timezone.now()
    warnings: list[str] = []
    previous = list(
        model.objects.for_tenant(tenant)
        .select_for_update()
        .filter(key=obj.key, state=GovernanceState.PUBLISHED)
        .exclude(pk=obj.pk)
    )
    for old in previous:
        warnings.extend(_retire_one(tenant, old, actor, now, reason=f"replaced by v{obj.version}"))
    before = snapshot(obj, GOVERNANCE_FIELDS)
    obj.state, obj.published_at = GovernanceState.PUBLISHED, now
    obj.save()
    _set_children_state(obj, state=GovernanceState.PUBLISHED, published_at=now)
    _transition_audit(tenant, obj, actor, "published", before)
    if isinstance(obj, Tier) and obj.is_anchor:
        others = (
            Tier.objects.for_tenant(tenant)
            .filter(product_id=obj.product_id, state=GovernanceState.PUBLISHED, is_anchor=True)
            .exclude(key=obj.key)
        )
        names = ", ".join(t.name for t in others)
        if names:
            warnings.append(f"{names} is also marked as the anchor; the pricing table shows the highest-ranked one.")
    return TransitionResult(obj=obj, warnings=warnings, retired=previous)


@transaction.atomic
def retire(tenant: Tenant, *, obj: G, actor: User, reason: str = "") -> TransitionResult:
    """Published -> retired. Allowed with licences on it (they keep working); the warning says how many."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "retire catalog items")
    obj = _lock(obj)
    _require_state(obj, GovernanceState.PUBLISHED, doing="retire")
    warnings = _retire_one(tenant, obj, actor, timezone.now(), reason=reason)
    return TransitionResult(obj=obj, warnings=warnings)


@transaction.atomic
def revise(tenant: Tenant, *, obj: G, actor: User) -> TransitionResult:
    """A published item -> a new draft version (N+1) with the same fields, prices and entitlements."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "revise catalog items")
    obj = _lock(obj)
    _require_state(obj, GovernanceState.PUBLISHED, doing="revise")
    model = type(obj)
    open_version = (
        model.objects.for_tenant(tenant)
        .filter(key=obj.key)
        .filter(state__in=[GovernanceState.DRAFT, GovernanceState.AWAITING_APPROVAL])
        .first()
    )
    if open_version is not None:
        raise Conflict(
            f"{_label(open_version).capitalize()} is already open ({open_version.get_state_display()}"
            "); finish or delete it first.",
            code=CatalogErrorCode.OPEN_DRAFT_EXISTS,
            details={"open_version_id": open_version.pk},
        )
    latest = model.objects.for_tenant(tenant).filter(key=obj.key).aggregate(v=Max("version"))["v"] or obj.version
    copy = model.objects.get(pk=obj.pk)
    copy.pk = copy.id = None
    copy._state.adding = True
    copy.version = latest + 1
    copy.state = GovernanceState.DRAFT
    copy.created_by, copy.created_at, copy.contributor_ids = actor, timezone.now(), [actor.pk]
    copy.submitted_by = copy.submitted_at = copy.approved_by = copy.approved_at = None
    copy.approval_comment = ""
    copy.published_at = copy.retired_at = None
    copy.save()
    for name in M2M_FIELDS.get(model, ()):
        getattr(copy, name).set(getattr(obj, name).all())
    if isinstance(obj, Tier | AddOn):
        kind = "tier" if isinstance(obj, Tier) else "addon"
        Price.objects.bulk_create(
            [
                Price(
                    tenant=tenant,
                    **{kind: copy},
                    key=p.key,
                    version=copy.version,
                    interval=p.interval,
                    amount=p.amount,
                    currency=p.currency,
                    per_seat=p.per_seat,
                    created_by=actor,
                    contributor_ids=[actor.pk],
                )
                for p in obj.prices.all()
            ]
        )
        Entitlement.objects.bulk_create(
            [
                Entitlement(
                    tenant=tenant,
                    **{kind: copy},
                    feature_id=e.feature_id,
                    enabled=e.enabled,
                    limit=e.limit,
                    enforcement=e.enforcement,
                    soft_limit_percent=e.soft_limit_percent,
                    overage_note=e.overage_note,
                )
                for e in obj.entitlements.all()
            ]
        )
    _audit(
        tenant,
        actor=actor,
        action=_action(copy, "revised"),
        obj=copy,
        before={"from_id": obj.pk, "from_version": obj.version},
        after=_snap(copy),
    )
    return TransitionResult(obj=copy)


TRANSITIONS = {
    "submit": submit_for_approval,
    "approve": approve,
    "publish": publish,
    "retire": retire,
    "revise": revise,
    "return_to_draft": return_to_draft,
}


def ensure_product(tenant: Tenant, *, key: str, name: str, actor: User | str, description: str = "") -> Product:
    """The product with `key`, created (and audited) when missing."""
    product = Product.objects.for_tenant(tenant).filter(key=key).first()
    if product is None:
        product = Product(tenant=tenant, key=key, name=name, description=description)
        _clean(product)
        product.save()
        _audit(tenant, actor=actor, action="product.created", obj=product, after=_snap(product))
    return product
