"""Offer settings governance: draft -> awaiting approval -> live -> retired, approved by a second person.

The pattern of the catalog and the trigger rules (catalog/services/governance.py,
upgrades/rules/services/governance.py): a change is a new draft version copying the live one;
only drafts are edited; whoever wrote, edited or submitted a version may not approve it (owners
may approve anything); approval makes the version live and retires the previous live version in
the same transaction (`offersettings_one_live` allows one live row per tenant). Every write is
validated against the tenant's catalog and audited.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Capability, Membership, Role, Tenant, User
from accounts.services import record_audit, snapshot
from upgrades.offers.errors import Conflict, InvalidInput, NotFound, OffersErrorCode, PermissionDenied
from upgrades.offers.models import OfferSettings, SettingsState
from upgrades.offers.services.settings_validation import (
    DRIVER_FIELDS,
    DRIVER_LABELS,
    VariantView,
    describe_driver,
    describe_variants,
    validate_settings,
)

__all__ = [
    "DRIVER_FIELDS", "DRIVER_LABELS", "TRANSITIONS", "VariantView", "approval_refusal", "approve_settings",
    "create_settings_draft", "describe_driver", "describe_variants", "four_eyes_refusal", "open_draft",
    "retire_settings", "return_settings_to_draft", "submit_settings", "update_settings", "validate_settings",
]  # fmt: skip

EDITABLE = (
    "name",
    "signal_kinds",
    "expiry_days",
    "requires_csm_review",
    "value_model",
    "discount_variants",
    "trial_days",
    "trial_window_days",
    "similar_min_accounts",
)
GOVERNANCE = (
    "state",
    "version",
    "submitted_by_id",
    "submitted_at",
    "approved_by_id",
    "approved_at",
    "approval_comment",
    "live_at",
    "retired_at",
    "contributor_ids",
)
EDIT_CAPABILITY = Capability.EDIT_CATALOG
APPROVE_CAPABILITY = Capability.APPROVE_CATALOG
COMMENT_MAX = 1000

# --- permissions and state -----------------------------------------------------------------


def _membership(tenant: Tenant, actor: User) -> Membership | None:
    return Membership.objects.for_tenant(tenant).filter(user=actor).first() if isinstance(actor, User) else None


def _require(tenant: Tenant, actor: User, capability: str, doing: str) -> Membership | None:
    membership = _membership(tenant, actor)
    if isinstance(actor, User) and actor.is_superuser:
        return membership
    if membership is None or not membership.can(capability):
        raise PermissionDenied(
            f"You may not {doing}: that needs the '{Capability(capability).label}' permission.",
            code=OffersErrorCode.NO_CAPABILITY,
        )
    return membership


def _lock(tenant: Tenant, obj: OfferSettings) -> OfferSettings:
    locked = OfferSettings.objects.for_tenant(tenant).select_for_update().filter(pk=obj.pk).first()
    if locked is None:
        raise NotFound(f"No offer settings {obj.pk}.")
    return locked


def _require_state(obj: OfferSettings, *states: str, doing: str) -> None:
    if obj.state not in states:
        wanted = " or ".join(SettingsState(s).label.lower() for s in states)
        raise Conflict(
            f"Cannot {doing} {obj}: it is {obj.get_state_display().lower()}, not {wanted}.",
            code=OffersErrorCode.WRONG_STATE,
            details={"state": obj.state},
        )


def _audit(tenant: Tenant, obj: OfferSettings, actor: Any, verb: str, before: dict, reason: str = "") -> None:
    after = snapshot(obj, GOVERNANCE)
    if reason:
        after["reason"] = reason
    record_audit(tenant, actor=actor, action=f"offersettings.{verb}", obj=obj, before=before, after=after)


def four_eyes_refusal(obj: OfferSettings, actor: User, membership: Membership | None) -> str | None:
    """Why `actor` may not approve `obj`, or None (owners and platform superusers may approve anything)."""
    if actor.is_superuser or (membership is not None and membership.role == Role.OWNER):
        return None
    if actor.pk == obj.created_by_id or actor.pk in (obj.contributor_ids or []):
        return f"You wrote {obj}, so someone else must approve it: four eyes on every offer settings change."
    if actor.pk == obj.submitted_by_id:
        return f"You submitted {obj}, so someone else must approve it."
    return None


def approval_refusal(tenant: Tenant, obj: OfferSettings, actor: User) -> str | None:
    """Why `actor` can't approve `obj` now (capability or four eyes), for a disabled button's reason."""
    membership = _membership(tenant, actor)
    if not actor.is_superuser and (membership is None or not membership.can(APPROVE_CAPABILITY)):
        return f"Approving needs the '{APPROVE_CAPABILITY.label}' permission."
    return four_eyes_refusal(obj, actor, membership)


# --- the services ----------------------------------------------------------------------------


def open_draft(tenant: Tenant) -> OfferSettings | None:
    return (
        OfferSettings.objects.for_tenant(tenant)
        .filter(state__in=[SettingsState.DRAFT, SettingsState.AWAITING_APPROVAL])
        .order_by("-version")
        .first()
    )


@transaction.atomic
def create_settings_draft(tenant: Tenant, *, actor: User, **fields: Any) -> OfferSettings:
    """A new draft version: the live version's fields (or the defaults), then `fields` over them."""
    _require(tenant, actor, EDIT_CAPABILITY, "draft offer settings")
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", code=OffersErrorCode.INVALID,
                           details={name: ["Not an editable field."] for name in sorted(unknown)})  # fmt: skip
    # Serialise drafting per tenant: lock the tenant's rows so two drafts can't take the same version.
    list(OfferSettings.objects.for_tenant(tenant).select_for_update().values_list("pk", flat=True))
    existing = open_draft(tenant)
    if existing is not None:
        raise Conflict(
            f"{existing} is already open ({existing.get_state_display().lower()}); finish or retire it first.",
            code=OffersErrorCode.WRONG_STATE,
            details={"open_version_id": existing.pk},
        )
    live = OfferSettings.objects.for_tenant(tenant).filter(state=SettingsState.LIVE).first()
    base = {name: getattr(live, name) for name in EDITABLE} if live is not None else {}
    version = (OfferSettings.objects.for_tenant(tenant).aggregate(v=Max("version"))["v"] or 0) + 1
    obj = OfferSettings(tenant=tenant, version=version, created_by=actor, contributor_ids=[actor.pk],
                        **{**base, **fields})  # fmt: skip
    validate_settings(tenant, obj)
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise Conflict("Someone else drafted offer settings at the same moment; reload.",
                       code=OffersErrorCode.WRONG_STATE) from exc  # fmt: skip
    after = {**snapshot(obj, EDITABLE), "version": obj.version, "copied_from": live.pk if live else None}
    record_audit(tenant, actor=actor, action="offersettings.created", obj=obj, after=after)
    return obj


@transaction.atomic
def update_settings(tenant: Tenant, *, settings: OfferSettings, actor: User, **fields: Any) -> OfferSettings:
    _require(tenant, actor, EDIT_CAPABILITY, "edit offer settings")
    obj = _lock(tenant, settings)
    if obj.state != SettingsState.DRAFT:
        raise Conflict(f"{obj} is {obj.get_state_display().lower()}; only drafts can be edited.",
                       code=OffersErrorCode.NOT_DRAFT)  # fmt: skip
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"{', '.join(sorted(unknown))} cannot be changed.", code=OffersErrorCode.INVALID,
                           details={name: ["Not an editable field."] for name in sorted(unknown)})  # fmt: skip
    before = snapshot(obj, EDITABLE)
    for name, value in fields.items():
        setattr(obj, name, value)
    validate_settings(tenant, obj)
    if actor.pk not in (obj.contributor_ids or []):
        obj.contributor_ids = [*(obj.contributor_ids or []), actor.pk]
    obj.save()
    record_audit(tenant, actor=actor, action="offersettings.updated", obj=obj, before=before,
                 after=snapshot(obj, EDITABLE))  # fmt: skip
    return obj


@transaction.atomic
def submit_settings(tenant: Tenant, *, settings: OfferSettings, actor: User) -> OfferSettings:
    _require(tenant, actor, EDIT_CAPABILITY, "submit offer settings")
    obj = _lock(tenant, settings)
    _require_state(obj, SettingsState.DRAFT, doing="submit")
    validate_settings(tenant, obj)
    before = snapshot(obj, GOVERNANCE)
    obj.state, obj.submitted_by, obj.submitted_at = SettingsState.AWAITING_APPROVAL, actor, timezone.now()
    obj.approved_by, obj.approved_at, obj.approval_comment = None, None, ""
    obj.save()
    _audit(tenant, obj, actor, "submitted", before)
    return obj


@transaction.atomic
def approve_settings(tenant: Tenant, *, settings: OfferSettings, actor: User, comment: str = "") -> OfferSettings:
    """A second person's approval makes the version live and retires the previous live version."""
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise InvalidInput(
            f"The approval comment is {len(comment)} characters; keep it to {COMMENT_MAX}.",
            code=OffersErrorCode.INVALID,
            details={"comment": [f"At most {COMMENT_MAX} characters."]},
        )
    membership = _require(tenant, actor, APPROVE_CAPABILITY, "approve offer settings")
    obj = _lock(tenant, settings)
    _require_state(obj, SettingsState.AWAITING_APPROVAL, doing="approve")
    refusal = four_eyes_refusal(obj, actor, membership)
    if refusal:
        raise PermissionDenied(refusal, code=OffersErrorCode.FOUR_EYES)
    validate_settings(tenant, obj)
    now = timezone.now()
    for old in OfferSettings.objects.for_tenant(tenant).select_for_update().filter(state=SettingsState.LIVE):
        old_before = snapshot(old, GOVERNANCE)
        old.state, old.retired_at = SettingsState.RETIRED, now
        old.save(update_fields=["state", "retired_at", "updated_at"])
        _audit(tenant, old, actor, "retired", old_before, reason=f"replaced by v{obj.version}")
    before = snapshot(obj, GOVERNANCE)
    obj.state, obj.approved_by, obj.approved_at, obj.approval_comment = SettingsState.LIVE, actor, now, comment
    obj.live_at = now
    obj.save()
    _audit(tenant, obj, actor, "approved", before)
    return obj


@transaction.atomic
def return_settings_to_draft(
    tenant: Tenant, *, settings: OfferSettings, actor: User, reason: str = ""
) -> OfferSettings:
    _require(tenant, actor, EDIT_CAPABILITY, "send offer settings back to draft")
    obj = _lock(tenant, settings)
    _require_state(obj, SettingsState.AWAITING_APPROVAL, doing="return to draft")
    before = snapshot(obj, GOVERNANCE)
    obj.state = SettingsState.DRAFT
    obj.submitted_by = obj.submitted_at = obj.approved_by = obj.approved_at = None
    obj.save()
    _audit(tenant, obj, actor, "returned_to_draft", before, reason=reason[:500])
    return obj


@transaction.atomic
def retire_settings(tenant: Tenant, *, settings: OfferSettings, actor: User, reason: str = "") -> OfferSettings:
    """Live -> retired: no new offer is made until another version is approved. A draft may be discarded too."""
    _require(tenant, actor, EDIT_CAPABILITY, "retire offer settings")
    obj = _lock(tenant, settings)
    _require_state(obj, SettingsState.LIVE, SettingsState.DRAFT, SettingsState.AWAITING_APPROVAL, doing="retire")
    before = snapshot(obj, GOVERNANCE)
    obj.state, obj.retired_at = SettingsState.RETIRED, timezone.now()
    obj.save()
    _audit(tenant, obj, actor, "retired", before, reason=reason[:500])
    return obj


TRANSITIONS = {
    "submit": submit_settings,
    "approve": approve_settings,
    "return_to_draft": return_settings_to_draft,
    "retire": retire_settings,
}
