"""Catalog builders for tests: everything goes through catalog.services, as a product manager would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accounts.models import Tenant, User
from catalog import services
from catalog.models import AddOn, Feature, FeatureKind, Governed, Product, Tier
from catalog.services import Grant


def make_product(tenant: Tenant, key: str = "app", name: str = "App") -> Product:
    return services.ensure_product(tenant, key=key, name=name, actor="test")


def make_feature(
    tenant: Tenant,
    product: Product,
    key: str,
    *,
    kind: str = FeatureKind.METERED,
    unit: str = "",
    name: str | None = None,
    sort_order: int = 0,
) -> Feature:
    return Feature.objects.create(
        tenant=tenant,
        product=product,
        key=key,
        name=name or key.replace("_", " ").title(),
        kind=kind,
        unit=unit,
        sort_order=sort_order,
    )


def make_tier(
    tenant: Tenant,
    actor: User,
    *,
    product: Product,
    key: str,
    rank: int,
    monthly: int | None = None,
    annual: int | None = None,
    grants: dict[Feature, Any] | None = None,
    per_seat: bool = True,
    **fields: Any,
) -> Tier:
    """A draft tier. `grants` maps feature -> limit (int or None for unlimited), False (off) or a Grant."""
    fields.setdefault("name", key.title())
    tier = services.create_draft(tenant, model=Tier, actor=actor, product=product, key=key, rank=rank, **fields)
    if monthly is not None:
        services.set_price(tenant, owner=tier, interval="month", amount=monthly, actor=actor, per_seat=per_seat)
    if annual is not None:
        services.set_price(tenant, owner=tier, interval="year", amount=annual, actor=actor, per_seat=per_seat)
    for feature, value in (grants or {}).items():
        services.set_entitlement(tenant, owner=tier, feature=feature, actor=actor, grant=_grant(value))
    return Tier.objects.get(pk=tier.pk)


def make_addon(
    tenant: Tenant,
    actor: User,
    *,
    product: Product,
    key: str,
    monthly: int | None = None,
    annual: int | None = None,
    grants: dict[Feature, Any] | None = None,
    compatible: list[Tier] = (),
    **fields: Any,
) -> AddOn:
    fields.setdefault("name", key.title())
    addon = services.create_draft(
        tenant, model=AddOn, actor=actor, product=product, key=key, compatible_tiers=list(compatible), **fields
    )
    if monthly is not None:
        services.set_price(tenant, owner=addon, interval="month", amount=monthly, actor=actor)
    if annual is not None:
        services.set_price(tenant, owner=addon, interval="year", amount=annual, actor=actor)
    for feature, value in (grants or {}).items():
        services.set_entitlement(tenant, owner=addon, feature=feature, actor=actor, grant=_grant(value))
    return AddOn.objects.get(pk=addon.pk)


def _grant(value: Any) -> Grant:
    if isinstance(value, Grant):
        return value
    if value is False:
        return Grant(enabled=False)
    if value is True or value is None:
        return Grant(limit=None)
    return Grant(limit=int(value))


def publish_through_governance(tenant: Tenant, obj: Governed, *, author: User, approver: User) -> Governed:
    services.submit_for_approval(tenant, obj=obj, actor=author)
    services.approve(tenant, obj=obj, actor=approver)
    result = services.publish(tenant, obj=obj, actor=author)
    return result.obj


@dataclass
class Ladder:
    """A published Free < Team < Business ladder of one tenant, and the people who made it."""

    tenant: Tenant
    pm: User
    approver: User
    product: Product
    api_calls: Feature
    seats: Feature
    sso: Feature
    free: Tier
    team: Tier
    business: Tier
    addon: AddOn
    extras: dict[str, Any] = field(default_factory=dict)


def build_ladder(world: Any, *, prefix: str = "") -> Ladder:
    """Free (1k calls), Team (50k calls, $29/$290), Business (unlimited, SSO, $79/$790), an SSO add-on."""
    tenant, pm, approver = world.tenant, world.staff["product_manager"], world.staff["owner"]
    product = make_product(tenant, name=f"{prefix}App")
    api_calls = make_feature(tenant, product, "api_calls", unit="API calls", sort_order=1)
    seats = make_feature(tenant, product, "seats", kind=FeatureKind.SEATS, unit="seats", sort_order=2)
    sso = make_feature(tenant, product, "sso", kind=FeatureKind.BOOLEAN, name="Single sign-on", sort_order=3)
    free = make_tier(
        tenant,
        pm,
        product=product,
        key="free",
        rank=10,
        is_free=True,
        name=f"{prefix}Free",
        grants={api_calls: 1_000, seats: 3, sso: False},
    )
    team = make_tier(
        tenant,
        pm,
        product=product,
        key="team",
        rank=20,
        monthly=2_900,
        annual=29_000,
        name=f"{prefix}Team",
        grants={api_calls: 50_000, seats: 25, sso: False},
    )
    business = make_tier(
        tenant,
        pm,
        product=product,
        key="business",
        rank=30,
        monthly=7_900,
        annual=79_000,
        name=f"{prefix}Business",
        is_anchor=True,
        grants={api_calls: None, seats: None, sso: True},
    )
    for tier in (free, team, business):
        publish_through_governance(tenant, tier, author=pm, approver=approver)
    addon = make_addon(
        tenant,
        pm,
        product=product,
        key="sso-pack",
        monthly=1_000,
        annual=10_000,
        name=f"{prefix}SSO pack",
        grants={sso: True},
        compatible=[team],
    )
    publish_through_governance(tenant, addon, author=pm, approver=approver)
    refresh = {t.key: Tier.objects.get(pk=t.pk) for t in (free, team, business)}
    return Ladder(
        tenant=tenant,
        pm=pm,
        approver=approver,
        product=product,
        api_calls=api_calls,
        seats=seats,
        sso=sso,
        free=refresh["free"],
        team=refresh["team"],
        business=refresh["business"],
        addon=AddOn.objects.get(pk=addon.pk),
    )


def add_extras(ladder: Ladder, *, prefix: str = "") -> Ladder:
    """A meter, a published bundle and discount policy, and a draft tier on top of a ladder."""
    from catalog.models import Bundle, DiscountPolicy, Meter

    tenant, pm = ladder.tenant, ladder.pm
    ladder.extras["meter"] = Meter.objects.create(
        tenant=tenant, feature=ladder.api_calls, key="api_calls", name=f"{prefix}API calls meter", event_name="api.call"
    )
    bundle = services.create_draft(
        tenant,
        model=Bundle,
        actor=pm,
        key="clinics",
        name=f"{prefix}Clinic bundle",
        tier=ladder.team,
        addons=[ladder.addon],
        audience_kind="industry",
        audience="healthcare",
        scenarios=[{"title": "A 12-person clinic", "story": "Audit-ready in a week."}],
    )
    ladder.extras["bundle"] = publish_through_governance(tenant, bundle, author=pm, approver=ladder.approver)
    policy = services.create_draft(
        tenant,
        model=DiscountPolicy,
        actor=pm,
        key="standard",
        name=f"{prefix}Standard policy",
        term_rules=[{"years": 2, "percent": "10"}, {"years": 3, "percent": "15"}],
        volume_rules=[{"min_seats": 50, "max_seats": None, "percent": "5"}],
        cap_percent=20,
    )
    ladder.extras["policy"] = publish_through_governance(tenant, policy, author=pm, approver=ladder.approver)
    ladder.extras["draft"] = make_tier(
        tenant,
        pm,
        product=ladder.product,
        key="scale",
        rank=40,
        monthly=15_900,
        annual=159_000,
        name=f"{prefix}Scale draft",
        grants={ladder.api_calls: None, ladder.seats: None, ladder.sso: True},
    )
    return ladder
