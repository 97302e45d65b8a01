"""Writes to the catalog: drafts, and the governance path draft -> awaiting approval -> published -> retired.

Invariants kept here (and nowhere else):
- Only drafts are edited. A published tier, add-on, bundle or policy is changed by
  `revise`, which makes version N+1 as a new draft; publishing it retires version N.
- Prices and entitlements belong to one version of their tier/add-on and follow its
  state: they are frozen with it and retired with it, and licences keep pointing at
  the exact rows they were sold (grandfathering).
- Four eyes: nobody approves a version they wrote or submitted; owners may approve
  anything (a one-person vendor must still be able to ship).
- Every edit and transition is written to the audit log with before/after, in the
  same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Model
from django.utils import timezone

from accounts.models import Capability, Membership, Role, Tenant, User
from accounts.services import record_audit, snapshot
from catalog import hooks, pricing
from catalog.errors import CatalogErrorCode, Conflict, InvalidInput, PermissionDenied
from catalog.models import (
    AddOn,
    Bundle,
    DiscountPolicy,
    Enforcement,
    Entitlement,
    Feature,
    GovernanceState,
    Governed,
    Interval,
    Price,
    Product,
    Tier,
)
from catalog.validation import PriceDraft, flatten, ladder_conflicts, price_issues

G = TypeVar("G", bound=Governed)

GOVERNANCE_FIELDS = (
    "state",
    "version",
    "created_by_id",
    "submitted_by_id",
    "submitted_at",
    "approved_by_id",
    "approved_at",
    "published_at",
    "retired_at",
    "contributor_ids",
)
M2M_FIELDS: dict[type[Model], tuple[str, ...]] = {AddOn: ("compatible_tiers",), Bundle: ("addons",)}
# Fields a draft may set through create_draft/update_draft, per model.
EDITABLE_FIELDS: dict[type[Model], tuple[str, ...]] = {
    Tier: (
        "key",
        "product",
        "name",
        "rank",
        "tagline",
        "outcomes",
        "who_for",
        "is_public",
        "is_free",
        "default_trial_days",
        "is_anchor",
        "currency",
    ),
    AddOn: ("key", "product", "name", "description", "currency", "compatible_tiers"),
    Bundle: ("key", "name", "tier", "addons", "audience_kind", "audience", "description", "scenarios"),
    DiscountPolicy: (
        "key",
        "name",
        "term_rules",
        "volume_rules",
        "combination",
        "cap_percent",
        "loyalty_percent",
        "exception_approver_role",
    ),
}


@dataclass
class TransitionResult:
    """The item after a transition, and what the person should know (e.g. licences still on a retired tier)."""

    obj: Governed
    warnings: list[str] = field(default_factory=list)
    retired: list[Governed] = field(default_factory=list)


# --- Helpers ---------------------------------------------------------------------------------


def _membership(tenant: Tenant, actor: User) -> Membership | None:
    if not isinstance(actor, User):
        return None
    return Membership.objects.for_tenant(tenant).filter(user=actor).first()


def _require(tenant: Tenant, actor: User, capability: str, doing: str) -> Membership | None:
    """The actor's membership, after checking it carries `capability`. Platform superusers pass."""
    if isinstance(actor, User) and actor.is_superuser:
        return _membership(tenant, actor)
    membership = _membership(tenant, actor)
    if membership is None or not membership.can(capability):
        raise PermissionDenied(
            f"You may not {doing}: that needs the '{Capability(capability).label}' permission.",
            code=CatalogErrorCode.NO_CAPABILITY,
        )
    return membership


def _is_owner(actor: User, membership: Membership | None) -> bool:
    return (isinstance(actor, User) and actor.is_superuser) or (
        membership is not None and membership.role == Role.OWNER
    )


def _label(obj: Governed) -> str:
    return f"{obj._meta.verbose_name} {obj.name!s} v{obj.version}"


def _action(obj: Model, verb: str) -> str:
    return f"{obj._meta.model_name}.{verb}"


def _audit_fields(obj: Model) -> list[str]:
    return [f.attname for f in obj._meta.concrete_fields if f.attname not in ("id", "tenant_id")]


def _snap(obj: Model) -> dict[str, Any]:
    data = snapshot(obj, _audit_fields(obj))
    for name in M2M_FIELDS.get(type(obj), ()):
        if obj.pk is not None:
            data[name] = sorted(getattr(obj, name).values_list("pk", flat=True))
    return data


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in sorted(changed)}, {k: after.get(k) for k in sorted(changed)}


def _clean(obj: Model, *, exclude: Iterable[str] = ()) -> None:
    try:
        obj.full_clean(exclude=list(exclude))
    except ValidationError as exc:
        raise InvalidInput(
            _first_message(exc.message_dict), code=CatalogErrorCode.INVALID, details=exc.message_dict
        ) from exc


def _first_message(details: dict[str, list[str]]) -> str:
    for name, messages in details.items():
        if messages:
            return messages[0] if name == "__all__" else f"{name.replace('_', ' ').capitalize()}: {messages[0]}"
    return "Invalid input."


def _add_contributor(obj: Governed, actor: User) -> None:
    if isinstance(actor, User) and actor.pk not in obj.contributor_ids:
        obj.contributor_ids = [*obj.contributor_ids, actor.pk]


def _lock(obj: G) -> G:
    """Re-read the row under a lock so two transitions of one item serialise."""
    return type(obj).objects.select_for_update().get(pk=obj.pk, tenant_id=obj.tenant_id)


def _require_draft(obj: Governed, doing: str = "edit") -> None:
    if obj.state != GovernanceState.DRAFT:
        hint = {
            GovernanceState.PUBLISHED: " Revise it to start a new draft version.",
            GovernanceState.AWAITING_APPROVAL: " Return it to draft first.",
        }.get(obj.state, "")
        raise Conflict(
            f"{_label(obj).capitalize()} is {obj.get_state_display().lower()}, so you cannot {doing} it." + hint,
            code=CatalogErrorCode.NOT_DRAFT,
            details={"state": obj.state},
        )


def _same_tenant(tenant: Tenant, field_name: str, value: Any) -> None:
    values = value if isinstance(value, list | tuple | set) else [value]
    for item in values:
        if item is not None and getattr(item, "tenant_id", tenant.pk) != tenant.pk:
            raise InvalidInput(
                "Invalid input.",
                code=CatalogErrorCode.INVALID,
                details={field_name: ["Pick an item of this workspace."]},
            )


# --- Per-model rules -------------------------------------------------------------------------


def _check_draft_rules(tenant: Tenant, obj: Governed) -> None:
    """Rules that must hold for any saved draft (submit adds completeness checks)."""
    if isinstance(obj, Tier | AddOn) and obj.pk is not None:
        prices = [PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in obj.prices.all()]
        issues = price_issues(obj, prices)
        if "currency" in issues:
            raise InvalidInput(
                issues["currency"][0], code=CatalogErrorCode.CURRENCY_MISMATCH, details={"currency": issues["currency"]}
            )
    if isinstance(obj, Tier) and obj.product_id and obj.product.tenant_id != tenant.pk:
        raise InvalidInput("Invalid input.", details={"product": ["Pick a product of this workspace."]})
    if isinstance(obj, DiscountPolicy):
        details = {}
        for name, parse in (("term_rules", pricing.parse_term_rules), ("volume_rules", pricing.parse_volume_rules)):
            try:
                parse(getattr(obj, name))
            except ValueError as exc:
                details[name] = [str(exc)]
        if details:
            raise InvalidInput(_first_message(details), code=CatalogErrorCode.BAD_RULES, details=details)


def _bundle_issues(bundle: Bundle, *, for_publish: bool) -> list[str]:
    issues = []
    tier = bundle.tier
    for addon in bundle.addons.all():
        compatible_keys = {t.key for t in addon.compatible_tiers.all()}
        if compatible_keys and tier.key not in compatible_keys:
            issues.append(f"The add-on {addon.name} is not offered with the {tier.name} tier.")
        if for_publish and addon.state != GovernanceState.PUBLISHED:
            issues.append(f"The add-on {addon.name} v{addon.version} is not published.")
    if for_publish and tier.state != GovernanceState.PUBLISHED:
        issues.append(f"The tier {tier.name} v{tier.version} is not published; publish it first.")
    if not bundle.scenarios:
        issues.append("Add at least one scenario: a team like the customer's and what changes for them.")
    for i, scenario in enumerate(bundle.scenarios or []):
        if not isinstance(scenario, dict) or not scenario.get("title") or not scenario.get("story"):
            issues.append(f"Scenario {i + 1} needs a title and a story.")
    return issues


def current_tier_ladder(tenant: Tenant, *, product_id: int, exclude_key: str) -> list[Tier]:
    """Published tiers of one product except versions of `exclude_key`, with entitlements loaded."""
    return list(
        Tier.objects.for_tenant(tenant)
        .filter(product_id=product_id, state=GovernanceState.PUBLISHED)
        .exclude(key=exclude_key)
        .prefetch_related("entitlements")
    )


def tier_issues(tenant: Tenant, tier: Tier) -> list[tuple[str, str]]:
    """(code, message) for everything that stops `tier` being submitted, approved or published."""
    issues: list[tuple[str, str]] = []
    prices = list(tier.prices.all())
    if not prices and not tier.is_free:
        issues.append((CatalogErrorCode.MISSING_PRICE, f"{tier.name} has no price. Add a monthly or annual price."))
    found = price_issues(tier, [PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in prices])
    for name, messages in found.items():
        code = {"currency": CatalogErrorCode.CURRENCY_MISMATCH, "interval": CatalogErrorCode.DUPLICATE_PRICE}.get(
            name, CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
        )
        issues.extend((code, m) for m in messages)
    others = current_tier_ladder(tenant, product_id=tier.product_id, exclude_key=tier.key)
    for other in others:
        if other.rank == tier.rank:
            issues.append(
                (
                    CatalogErrorCode.RANK_TAKEN,
                    f"Rank {tier.rank} is already {other.name}'s; give {tier.name} its own rank.",
                )
            )
        if tier.is_free and other.is_free:
            issues.append(
                (CatalogErrorCode.INVALID, f"{other.name} is already the free default tier; only one tier can be.")
            )
    features = {f.pk: f for f in Feature.objects.for_tenant(tenant).filter(product_id=tier.product_id)}
    grants = {t.pk: {e.feature_id: e for e in t.entitlements.all()} for t in [*others, tier]}
    for conflict in ladder_conflicts([*others, tier], entitlements=grants, features=features, focus=tier):
        issues.append((CatalogErrorCode.LADDER, conflict.message))
    return issues


def addon_issues(addon: AddOn) -> list[tuple[str, str]]:
    issues: list[tuple[str, str]] = []
    prices = list(addon.prices.all())
    if not prices:
        issues.append((CatalogErrorCode.MISSING_PRICE, f"{addon.name} has no price."))
    for name, messages in price_issues(
        addon, [PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in prices]
    ).items():
        code = {"currency": CatalogErrorCode.CURRENCY_MISMATCH, "interval": CatalogErrorCode.DUPLICATE_PRICE}.get(
            name, CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
        )
        issues.extend((code, m) for m in messages)
    if not addon.entitlements.exists():
        issues.append((CatalogErrorCode.INVALID, f"{addon.name} grants nothing yet; add an entitlement."))
    return issues


def readiness_issues(tenant: Tenant, obj: Governed, *, for_publish: bool = False) -> list[tuple[str, str]]:
    """Everything that stops `obj` moving on, as (code, message); empty when it is ready."""
    if isinstance(obj, Tier):
        return tier_issues(tenant, obj)
    if isinstance(obj, AddOn):
        return addon_issues(obj)
    if isinstance(obj, Bundle):
        return [
            (CatalogErrorCode.NOT_PUBLISHED if "published" in m else CatalogErrorCode.INCOMPATIBLE, m)
            for m in _bundle_issues(obj, for_publish=for_publish)
        ]
    if isinstance(obj, DiscountPolicy):
        try:
            _check_draft_rules(tenant, obj)
        except InvalidInput as exc:
            return [(CatalogErrorCode.BAD_RULES, m) for m in flatten(exc.details or {})]
    return []


def _refuse_on_issues(tenant: Tenant, obj: Governed, *, doing: str, for_publish: bool = False) -> None:
    issues = readiness_issues(tenant, obj, for_publish=for_publish)
    if issues:
        code, first = issues[0]
        raise InvalidInput(
            f"Cannot {doing} {_label(obj)}: {first}" + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""),
            code=code,
            details={"issues": [m for _, m in issues]},
        )


# --- Drafts ----------------------------------------------------------------------------------


def _split_m2m(model: type[Model], fields: dict[str, Any]) -> dict[str, Any]:
    return {name: fields.pop(name) for name in M2M_FIELDS.get(model, ()) if name in fields}


@transaction.atomic
def create_draft(tenant: Tenant, *, model: type[G], actor: User, **fields: Any) -> G:
    """A new item (version 1 of its key) in draft. Use `revise` for a new version of a published one."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "draft catalog items")
    allowed = EDITABLE_FIELDS[model]
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"Unknown fields for {model.__name__}: {sorted(unknown)}")
    m2m = _split_m2m(model, fields)
    for name, value in [*fields.items(), *m2m.items()]:
        _same_tenant(tenant, name, list(value) if name in m2m else value)
    if model.objects.for_tenant(tenant).filter(key=fields.get("key")).exists():
        raise Conflict(
            f"The key {fields.get('key')!r} is taken. Revise the existing item to make a new version.",
            code=CatalogErrorCode.OPEN_DRAFT_EXISTS,
            details={"key": ["Already in use."]},
        )
    obj = model(tenant=tenant, created_by=actor, contributor_ids=[actor.pk], **fields)
    return save_draft(tenant, obj=obj, actor=actor, m2m=m2m)


@transaction.atomic
def update_draft(tenant: Tenant, *, obj: G, actor: User, **changes: Any) -> G:
    """Change fields of a draft. Anything past draft is refused with NOT_DRAFT."""
    allowed = EDITABLE_FIELDS[type(obj)]
    unknown = set(changes) - set(allowed)
    if unknown:
        raise TypeError(f"Unknown fields for {type(obj).__name__}: {sorted(unknown)}")
    if "key" in changes and obj.version > 1 and changes["key"] != obj.key:
        raise InvalidInput("A later version keeps its key.", details={"key": ["Keys cannot change after v1."]})
    obj = _lock(obj)
    m2m = _split_m2m(type(obj), changes)
    for name, value in [*changes.items(), *m2m.items()]:
        _same_tenant(tenant, name, list(value) if name in m2m else value)
    for name, value in changes.items():
        setattr(obj, name, value)
    return save_draft(tenant, obj=obj, actor=actor, m2m=m2m)


def save_draft(
    tenant: Tenant, *, obj: G, actor: User, m2m: dict[str, Any] | None = None, before: dict[str, Any] | None = None
) -> G:
    """Validate and save a draft built elsewhere (the admin's form), audit the difference.

    `before` is the audit snapshot from before the form changed the instance; it is read
    from the database when not given.
    """
    _require(tenant, actor, Capability.EDIT_CATALOG, "edit catalog drafts")
    if obj.tenant_id is None:
        obj.tenant = tenant
    if obj.tenant_id != tenant.pk:
        raise InvalidInput("This item belongs to another workspace.")
    is_new = obj.pk is None
    if not is_new:
        stored = type(obj).objects.select_for_update().get(pk=obj.pk, tenant=tenant)
        _require_draft(stored)
        if before is None:
            before = _snap(stored)
    else:
        obj.state = GovernanceState.DRAFT
        obj.created_by = obj.created_by or actor
    _add_contributor(obj, actor)
    _clean(obj)
    _check_draft_rules(tenant, obj)
    with transaction.atomic():
        obj.save()
        for name, value in (m2m or {}).items():
            getattr(obj, name).set(value)
    after = _snap(obj)
    if is_new:
        record_audit(tenant, actor=actor, action=_action(obj, "created"), obj=obj, after=after)
    else:
        b, a = _diff(before or {}, after)
        if b or a:
            record_audit(tenant, actor=actor, action=_action(obj, "updated"), obj=obj, before=b, after=a)
    return obj


def _owner_for_child(tenant: Tenant, owner: Tier | AddOn, actor: User) -> Tier | AddOn:
    _require(tenant, actor, Capability.EDIT_CATALOG, "edit catalog drafts")
    if owner.tenant_id != tenant.pk:
        raise InvalidInput("This item belongs to another workspace.")
    owner = _lock(owner)
    _require_draft(owner, "change its prices or entitlements")
    return owner


def _price_key(owner: Tier | AddOn, interval: str) -> str:
    prefix = "t" if isinstance(owner, Tier) else "a"
    return f"{prefix}-{owner.key}"[:54] + f"-{interval}"


@transaction.atomic
def set_price(
    tenant: Tenant,
    *,
    owner: Tier | AddOn,
    interval: str,
    amount: int,
    actor: User,
    per_seat: bool = True,
    currency: str | None = None,
) -> Price:
    """Create or change the draft price of `owner` for one interval (one price per interval)."""
    owner = _owner_for_child(tenant, owner, actor)
    if interval not in Interval.values:
        raise InvalidInput("Invalid input.", details={"interval": [f"Use one of {', '.join(Interval.values)}."]})
    currency = currency or owner.currency
    kind = "tier" if isinstance(owner, Tier) else "addon"
    price = Price.objects.for_tenant(tenant).filter(**{kind: owner}, interval=interval).first()
    before = _snap(price) if price else None
    siblings = [
        PriceDraft(p.interval, p.amount, p.currency, p.per_seat) for p in owner.prices.exclude(interval=interval)
    ]
    issues = price_issues(owner, [*siblings, PriceDraft(interval, amount, currency, per_seat)])
    if issues:
        code = CatalogErrorCode.CURRENCY_MISMATCH if "currency" in issues else CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
        raise InvalidInput(flatten(issues)[0], code=code, details=issues)
    if price is None:
        price = Price(
            tenant=tenant,
            **{kind: owner},
            interval=interval,
            key=_price_key(owner, interval),
            version=owner.version,
            created_by=actor,
        )
    price.amount, price.per_seat, price.currency = amount, per_seat, currency
    _add_contributor(price, actor)
    _clean(price)
    price.save()
    _add_contributor(owner, actor)
    owner.save(update_fields=["contributor_ids"])
    after = _snap(price)
    if before is None:
        record_audit(tenant, actor=actor, action="price.created", obj=price, after=after)
    else:
        b, a = _diff(before, after)
        if b:
            record_audit(tenant, actor=actor, action="price.updated", obj=price, before=b, after=a)
    return price


@transaction.atomic
def remove_price(tenant: Tenant, *, price: Price, actor: User) -> None:
    owner = _owner_for_child(tenant, price.owner, actor)
    record_audit(tenant, actor=actor, action="price.deleted", obj=price, before=_snap(price))
    price.delete()
    _add_contributor(owner, actor)
    owner.save(update_fields=["contributor_ids"])


@transaction.atomic
def replace_prices(tenant: Tenant, *, owner: Tier | AddOn, prices: Sequence[PriceDraft], actor: User) -> list[Price]:
    """Make a draft's prices exactly `prices` (one per interval), checking the final set as a whole.

    The admin's inline edits monthly and annual together; checking each row against the
    other's old value would refuse a valid joint change (both raised), so check the set.
    """
    owner = _owner_for_child(tenant, owner, actor)
    issues = price_issues(owner, prices)
    if issues:
        code = CatalogErrorCode.CURRENCY_MISMATCH if "currency" in issues else CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
        raise InvalidInput(flatten(issues)[0], code=code, details=issues)
    kind = "tier" if isinstance(owner, Tier) else "addon"
    existing = {p.interval: p for p in Price.objects.for_tenant(tenant).filter(**{kind: owner})}
    wanted = {p.interval for p in prices}
    for interval, price in existing.items():
        if interval not in wanted:
            record_audit(tenant, actor=actor, action="price.deleted", obj=price, before=_snap(price))
            price.delete()
    result = []
    for draft in prices:
        price = existing.get(draft.interval)
        before = _snap(price) if price else None
        if price is None:
            price = Price(
                tenant=tenant,
                **{kind: owner},
                interval=draft.interval,
                key=_price_key(owner, draft.interval),
                version=owner.version,
                created_by=actor,
            )
        price.amount, price.currency, price.per_seat = draft.amount, draft.currency, draft.per_seat
        _add_contributor(price, actor)
        _clean(price)
        price.save()
        after = _snap(price)
        if before is None:
            record_audit(tenant, actor=actor, action="price.created", obj=price, after=after)
        else:
            b, a = _diff(before, after)
            if set(b) - {"contributor_ids"}:
                record_audit(tenant, actor=actor, action="price.updated", obj=price, before=b, after=a)
        result.append(price)
    _add_contributor(owner, actor)
    owner.save(update_fields=["contributor_ids"])
    return result


@transaction.atomic
def remove_entitlement(tenant: Tenant, *, entitlement: Entitlement, actor: User) -> None:
    owner = _owner_for_child(tenant, entitlement.owner, actor)
    record_audit(tenant, actor=actor, action="entitlement.deleted", obj=entitlement, before=_snap(entitlement))
    entitlement.delete()
    _add_contributor(owner, actor)
    owner.save(update_fields=["contributor_ids"])


@dataclass(frozen=True)
class Grant:
    """One cell of the entitlement matrix as a product manager sets it."""

    enabled: bool = True
    limit: int | None = None
    enforcement: str = Enforcement.HARD
    soft_limit_percent: int = 80
    overage_note: str = ""


@transaction.atomic
def set_entitlement(
    tenant: Tenant, *, owner: Tier | AddOn, feature: Feature, actor: User, grant: Grant | None = None, **fields: Any
) -> Entitlement:
    """Create or change what a draft tier/add-on grants for `feature`."""
    grant = grant or Grant(**fields)
    owner = _owner_for_child(tenant, owner, actor)
    return _write_entitlement(tenant, owner=owner, feature=feature, grant=grant, actor=actor)


def _write_entitlement(
    tenant: Tenant, *, owner: Tier | AddOn, feature: Feature, grant: Grant, actor: User
) -> Entitlement:
    if feature.tenant_id != tenant.pk:
        raise InvalidInput("Invalid input.", details={"feature": ["Pick a feature of this workspace."]})
    if feature.product_id != owner.product_id:
        raise InvalidInput(
            f"{feature.name} belongs to another product than {owner.name}.",
            details={"feature": ["Pick a feature of the same product."]},
        )
    kind = "tier" if isinstance(owner, Tier) else "addon"
    entitlement = Entitlement.objects.for_tenant(tenant).filter(**{kind: owner}, feature=feature).first()
    before = _snap(entitlement) if entitlement else None
    if entitlement is None:
        entitlement = Entitlement(tenant=tenant, **{kind: owner}, feature=feature)
    entitlement.enabled = grant.enabled
    entitlement.limit = grant.limit
    entitlement.enforcement = grant.enforcement
    entitlement.soft_limit_percent = grant.soft_limit_percent
    entitlement.overage_note = grant.overage_note
    _clean(entitlement, exclude=["tier", "addon"])
    entitlement.save()
    after = _snap(entitlement)
    if before is None:
        record_audit(tenant, actor=actor, action="entitlement.created", obj=entitlement, after=after)
    else:
        b, a = _diff(before, after)
        if b:
            record_audit(tenant, actor=actor, action="entitlement.updated", obj=entitlement, before=b, after=a)
    _add_contributor(owner, actor)
    owner.save(update_fields=["contributor_ids"])
    return entitlement


@dataclass(frozen=True)
class MatrixCell:
    tier: Tier
    feature: Feature
    grant: Grant


@transaction.atomic
def set_entitlement_matrix(tenant: Tenant, *, cells: Sequence[MatrixCell], actor: User) -> int:
    """Apply a whole grid of cells at once: all of them, or (on any refusal) none. Returns cells changed."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "edit catalog drafts")
    owners: dict[int, Tier] = {}
    changed = 0
    for cell in cells:
        if cell.tier.pk not in owners:
            owners[cell.tier.pk] = _owner_for_child(tenant, cell.tier, actor)  # type: ignore[assignment]
        owner = owners[cell.tier.pk]
        current = Entitlement.objects.for_tenant(tenant).filter(tier=owner, feature=cell.feature).first()
        if (
            current is not None
            and Grant(
                current.enabled, current.limit, current.enforcement, current.soft_limit_percent, current.overage_note
            )
            == cell.grant
        ):
            continue
        if current is None and not cell.grant.enabled:
            continue  # no row and "off" mean the same thing
        _write_entitlement(tenant, owner=owner, feature=cell.feature, grant=cell.grant, actor=actor)
        changed += 1
    return changed


@transaction.atomic
def delete_draft(tenant: Tenant, *, obj: Governed, actor: User) -> None:
    """Drop a draft that was never published (its prices and entitlements go with it)."""
    _require(tenant, actor, Capability.EDIT_CATALOG, "delete catalog drafts")
    obj = _lock(obj)
    _require_draft(obj, "delete")
    record_audit(tenant, actor=actor, action=_action(obj, "deleted"), obj=obj, before=_snap(obj))
    if isinstance(obj, Tier | AddOn):
        obj.prices.all().delete()
    obj.delete()


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
    record_audit(tenant, actor=actor, action=_action(obj, verb), obj=obj, before=b, after=a)


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


@transaction.atomic
def approve(tenant: Tenant, *, obj: G, actor: User) -> TransitionResult:
    """Record a second person's approval. The item stays awaiting approval until it is published."""
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
    obj.approved_by, obj.approved_at = actor, now
    obj.save()
    _set_children_state(obj, approved_by=actor, approved_at=now)
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
    obj.save()
    _set_children_state(
        obj, state=GovernanceState.DRAFT, submitted_by=None, submitted_at=None, approved_by=None, approved_at=None
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
    record_audit(
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
        record_audit(tenant, actor=actor, action="product.created", obj=product, after=_snap(product))
    return product
