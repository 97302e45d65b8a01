"""Draft edits: create and change drafts, their prices and entitlements (one version at a time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Model

from accounts.models import Capability, Tenant, User
from catalog.errors import CatalogErrorCode, Conflict, InvalidInput
from catalog.models import (
    AddOn,
    Enforcement,
    Entitlement,
    Feature,
    GovernanceState,
    Governed,
    Interval,
    Price,
    Tier,
)
from catalog.services._base import (
    EDITABLE_FIELDS,
    M2M_FIELDS,
    G,
    _action,
    _add_contributor,
    _audit,
    _clean,
    _diff,
    _lock,
    _require,
    _require_draft,
    _same_tenant,
    _snap,
)
from catalog.services.rules import _check_draft_rules
from catalog.validation import PriceDraft, flatten, price_issues

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


@transaction.atomic
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
        _audit(tenant, actor=actor, action=_action(obj, "created"), obj=obj, after=after)
    else:
        b, a = _diff(before or {}, after)
        if b or a:
            _audit(tenant, actor=actor, action=_action(obj, "updated"), obj=obj, before=b, after=a)
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
        _audit(tenant, actor=actor, action="price.created", obj=price, after=after)
    else:
        b, a = _diff(before, after)
        if b:
            _audit(tenant, actor=actor, action="price.updated", obj=price, before=b, after=a)
    return price


@transaction.atomic
def remove_price(tenant: Tenant, *, price: Price, actor: User) -> None:
    owner = _owner_for_child(tenant, price.owner, actor)
    _audit(tenant, actor=actor, action="price.deleted", obj=price, before=_snap(price))
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
            _audit(tenant, actor=actor, action="price.deleted", obj=price, before=_snap(price))
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
            _audit(tenant, actor=actor, action="price.created", obj=price, after=after)
        else:
            b, a = _diff(before, after)
            if set(b) - {"contributor_ids"}:
                _audit(tenant, actor=actor, action="price.updated", obj=price, before=b, after=a)
        result.append(price)
    _add_contributor(owner, actor)
    owner.save(update_fields=["contributor_ids"])
    return result


@transaction.atomic
def remove_entitlement(tenant: Tenant, *, entitlement: Entitlement, actor: User) -> None:
    owner = _owner_for_child(tenant, entitlement.owner, actor)
    _audit(tenant, actor=actor, action="entitlement.deleted", obj=entitlement, before=_snap(entitlement))
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
        _audit(tenant, actor=actor, action="entitlement.created", obj=entitlement, after=after)
    else:
        b, a = _diff(before, after)
        if b:
            _audit(tenant, actor=actor, action="entitlement.updated", obj=entitlement, before=b, after=a)
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
    _audit(tenant, actor=actor, action=_action(obj, "deleted"), obj=obj, before=_snap(obj))
    if isinstance(obj, Tier | AddOn):
        obj.prices.all().delete()
    obj.delete()
