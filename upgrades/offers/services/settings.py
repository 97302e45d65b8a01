"""Offer settings governance: draft -> awaiting approval -> live -> retired, approved by a second person.

The pattern of the catalog and the trigger rules (catalog/services/governance.py,
upgrades/rules/services/governance.py): a change is a new draft version copying the live one;
only drafts are edited; whoever wrote, edited or submitted a version may not approve it (owners
may approve anything); approval makes the version live and retires the previous live version in
the same transaction (`offersettings_one_live` allows one live row per tenant). Every write is
validated against the tenant's catalog and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Capability, Membership, Role, Tenant, User
from accounts.services import record_audit, snapshot
from catalog.models import Meter
from catalog.money import format_money
from catalog.selectors import get_discount_policy
from upgrades.offers.errors import Conflict, InvalidInput, NotFound, OffersErrorCode, PermissionDenied
from upgrades.offers.models import OfferSettings, SettingsState
from upgrades.rules.models import SignalKind

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
LABEL_MAX = 200

# Each driver kind: its required fields and how each is read ("meter", "decimal", "percent", "minor").
DRIVER_FIELDS: dict[str, dict[str, str]] = {
    "hours_saved": {"meter": "meter", "hours_per_unit": "decimal", "hourly_cost": "minor"},
    "revenue_at_risk": {"amount": "minor", "probability_percent": "percent"},
    "incidents_avoided": {"per_month": "decimal", "cost_per_incident": "minor"},
}
DRIVER_LABELS = {
    "hours_saved": "Hours saved",
    "revenue_at_risk": "Revenue at risk",
    "incidents_avoided": "Incidents avoided",
}


# --- validation -----------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if not self.by_field:
            return
        field, reasons = next(iter(self.by_field.items()))
        count = sum(len(v) for v in self.by_field.values())
        message = f"{field}: {reasons[0]}" if count == 1 else f"The offer settings have {count} problems."
        raise InvalidInput(message, code=OffersErrorCode.INVALID, details=self.by_field)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _clean_drivers(tenant: Tenant, drivers: Any, errors: _Errors) -> list[dict[str, Any]]:
    if not isinstance(drivers, list):
        errors.add("value_model", "Must be a list of drivers.")
        return []
    meters = set(Meter.objects.for_tenant(tenant).values_list("key", flat=True))
    out: list[dict[str, Any]] = []
    for i, driver in enumerate(drivers):
        where = f"value_model[{i}]"
        if not isinstance(driver, dict):
            errors.add(where, "Each driver is an object with a kind.")
            continue
        kind = driver.get("kind")
        if kind not in DRIVER_FIELDS:
            errors.add(f"{where}.kind", f"Unknown driver kind {kind!r}; use one of {', '.join(DRIVER_FIELDS)}.")
            continue
        spec = DRIVER_FIELDS[kind]
        unknown = set(driver) - set(spec) - {"kind", "label"}
        for name in sorted(unknown):
            errors.add(f"{where}.{name}", f"Not a field of a {kind} driver.")
        clean: dict[str, Any] = {"kind": kind}
        for name, how in spec.items():
            value = driver.get(name)
            field = f"{where}.{name}"
            if value is None or value == "":
                errors.add(field, "Required.")
                continue
            if how == "meter":
                if not isinstance(value, str) or value not in meters:
                    errors.add(field, f"No meter {value!r} in this tenant's catalog.")
                    continue
                clean[name] = value
                continue
            if how == "minor":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    errors.add(field, "A whole amount in minor units (cents), 0 or more.")
                    continue
                clean[name] = value
                continue
            number = _decimal(value)
            if number is None or number < 0:
                errors.add(field, 'A number (as text, e.g. "0.05"), 0 or more.')
                continue
            if how == "percent" and number > 100:
                errors.add(field, "A percentage from 0 to 100.")
                continue
            clean[name] = _text(number)
        label = driver.get("label", "")
        if not isinstance(label, str) or len(label) > LABEL_MAX:
            errors.add(f"{where}.label", f"Text of at most {LABEL_MAX} characters.")
        else:
            clean["label"] = label.strip() or DRIVER_LABELS[kind]
        out.append(clean)
    return out


def _clean_variants(variants: Any, errors: _Errors) -> list[dict[str, Any]]:
    if not isinstance(variants, list):
        errors.add("discount_variants", "Must be a list of variants.")
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        where = f"discount_variants[{i}]"
        if not isinstance(variant, dict):
            errors.add(where, "Each variant is an object with a key and a percent.")
            continue
        for name in sorted(set(variant) - {"key", "percent", "explanation"}):
            errors.add(f"{where}.{name}", "Not a field of a discount variant.")
        key = variant.get("key")
        if (
            not isinstance(key, str)
            or not key.strip()
            or len(key) > 40
            or not key.replace("-", "").replace("_", "").isalnum()
        ):
            errors.add(f"{where}.key", "A short key of letters, digits, - or _ (at most 40).")
            continue
        if key in seen:
            errors.add(f"{where}.key", f"Key {key} is used twice.")
            continue
        seen.add(key)
        number = _decimal(variant.get("percent"))
        if number is None or not (0 <= number <= 100):
            errors.add(f"{where}.percent", "A percentage from 0 to 100.")
            continue
        if number != number.quantize(Decimal("0.01")):
            errors.add(f"{where}.percent", "At most two decimal places.")
            continue
        explanation = variant.get("explanation", "")
        if not isinstance(explanation, str) or len(explanation) > 500:
            errors.add(f"{where}.explanation", "Text of at most 500 characters.")
            continue
        out.append({"key": key, "percent": _text(number), "explanation": explanation.strip()})
    return out


def _clean_signal_kinds(kinds: Any, errors: _Errors) -> list[str]:
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        errors.add("signal_kinds", "Must be a list of signal kinds.")
        return []
    bad = [k for k in kinds if k not in SignalKind.values]
    if bad:
        errors.add("signal_kinds", f"Unknown signal kind(s): {', '.join(bad)}; use {', '.join(SignalKind.values)}.")
    return list(dict.fromkeys(k for k in kinds if k in SignalKind.values))


def validate_settings(tenant: Tenant, obj: OfferSettings) -> None:
    """Canonicalise obj's JSON fields in place, or raise InvalidInput with every problem and where it is."""
    errors = _Errors()
    obj.signal_kinds = _clean_signal_kinds(obj.signal_kinds, errors)
    obj.value_model = _clean_drivers(tenant, obj.value_model, errors)
    obj.discount_variants = _clean_variants(obj.discount_variants, errors)
    if not isinstance(obj.name, str) or not obj.name.strip():
        errors.add("name", "Required.")
    try:
        obj.full_clean(exclude=["tenant", "value_model", "discount_variants", "signal_kinds"], validate_unique=False)
    except ValidationError as exc:
        for field, reasons in exc.message_dict.items():
            for reason in reasons:
                errors.add(field, reason)
    errors.raise_if_any()


@dataclass(frozen=True)
class VariantView:
    key: str
    percent: Decimal
    explanation: str
    over_cap: bool
    cap_percent: Decimal | None

    @property
    def flag(self) -> str:
        return "needs approval per offer" if self.over_cap else ""


def describe_variants(tenant: Tenant, obj: OfferSettings) -> list[VariantView]:
    """Each variant next to the DiscountPolicy cap: over the cap is allowed, but each offer then waits for approval."""
    policy = get_discount_policy(tenant)
    cap = Decimal(policy.cap_percent) if policy is not None else None
    out = []
    for v in obj.discount_variants or []:
        percent = _decimal(v.get("percent")) or Decimal(0)
        out.append(
            VariantView(
                key=str(v.get("key", "")),
                percent=percent,
                explanation=str(v.get("explanation", "")),
                over_cap=cap is not None and percent > cap,
                cap_percent=cap,
            )
        )
    return out


def _money(value: Any, currency: str) -> str:
    return format_money(value, currency) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def describe_driver(driver: dict[str, Any], currency: str = "USD") -> str:
    """A driver in words, e.g. 'Hours saved: 0.05 h per unit of api_calls at 60.00/h'."""
    kind = driver.get("kind")
    label = driver.get("label") or DRIVER_LABELS.get(str(kind), str(kind))
    if kind == "hours_saved":
        cost = _money(driver.get("hourly_cost", 0), currency)
        return f"{label}: {driver.get('hours_per_unit')} h per unit of {driver.get('meter')}, at {cost} an hour"
    if kind == "revenue_at_risk":
        amount = _money(driver.get("amount", 0), currency)
        return f"{label}: {driver.get('probability_percent')} % chance of losing {amount}"
    if kind == "incidents_avoided":
        cost = _money(driver.get("cost_per_incident", 0), currency)
        return f"{label}: {driver.get('per_month')} incidents a month avoided, {cost} each"
    return str(label)


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
