"""Demo catalog: a realistic, fully governed catalog for the demo tenant and a small one for the second.

Everything goes through catalog.services, as product managers would do it: pm@ drafts,
pm2@ approves, pm@ publishes, so drafted-by / approved-by and four eyes read like a real
catalog. The audit log credits none of it to a person: every entry the seed writes says
"demo-seed" (`services.audited_as`), like billing's seed.

Idempotent over what people then do in the demo: an item whose key already exists (any
version, any state) is left alone, and the one pending change the demo prepares (Team v2)
is made only while no Team version other than v1 exists, so approving, publishing, revising
or retiring it in the admin and restarting `make run` changes nothing.

Keys other apps may rely on: tiers free / team / business / enterprise (demo tenant),
free / pro / scale (second tenant); add-ons compliance-pack, api-boost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.demo import DemoTenant
from accounts.models import Membership, Role, Tenant, User
from accounts.tenancy import tenant_context
from catalog import services
from catalog.models import (
    AddOn,
    Bundle,
    DiscountPolicy,
    Enforcement,
    Feature,
    FeatureKind,
    GovernanceState,
    Governed,
    Meter,
    Product,
    Tier,
)
from catalog.services import Grant

UNLIMITED = None


@dataclass
class Staff:
    author: User
    approver: User


def _staff(tenant: Tenant) -> Staff:
    members = {m.user.email.split("@")[0]: m.user for m in Membership.objects.for_tenant(tenant).select_related("user")}
    owner = Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).select_related("user").first()
    author = members.get("pm") or (owner.user if owner else None)
    approver = members.get("pm2") or (owner.user if owner else None)
    if author is None or approver is None:
        raise RuntimeError(f"Seed accounts first: {tenant.slug} has no product manager or owner.")
    return Staff(author=author, approver=approver)


def _feature(
    tenant: Tenant, product: Product, key: str, name: str, kind: str, unit: str, description: str, order: int
) -> Feature:
    feature, _ = Feature.objects.get_or_create(
        tenant=tenant,
        key=key,
        defaults={
            "product": product,
            "name": name,
            "kind": kind,
            "unit": unit,
            "description": description,
            "sort_order": order,
        },
    )
    return feature


def _meter(
    tenant: Tenant,
    feature: Feature,
    key: str,
    name: str,
    event: str,
    aggregation: str,
    prop: str = "",
    window: str = "billing_period",
    days: int | None = None,
) -> Meter:
    meter = Meter.objects.for_tenant(tenant).filter(key=key).first()
    if meter is None:
        meter = Meter(
            tenant=tenant,
            feature=feature,
            key=key,
            name=name,
            event_name=event,
            aggregation=aggregation,
            property=prop,
            window=window,
            window_days=days,
        )
        meter.full_clean()
        meter.save()
    return meter


def _exists(tenant: Tenant, model: type[Governed], key: str) -> Governed | None:
    return model.objects.for_tenant(tenant).filter(key=key).order_by("-version").first()


def _publish(tenant: Tenant, obj: Governed, staff: Staff) -> Governed:
    services.submit_for_approval(tenant, obj=obj, actor=staff.author)
    services.approve(tenant, obj=obj, actor=staff.approver)
    return services.publish(tenant, obj=obj, actor=staff.author).obj


def _tier(
    tenant: Tenant,
    staff: Staff,
    product: Product,
    key: str,
    *,
    prices: tuple[int | None, int | None],
    grants: dict[Feature, Grant],
    per_seat: bool = True,
    **fields: Any,
) -> Tier:
    found = _exists(tenant, Tier, key)
    if found is not None:
        return found
    tier = services.create_draft(tenant, model=Tier, actor=staff.author, product=product, key=key, **fields)
    monthly, annual = prices
    if monthly is not None:
        services.set_price(tenant, owner=tier, interval="month", amount=monthly, per_seat=per_seat, actor=staff.author)
    if annual is not None:
        services.set_price(tenant, owner=tier, interval="year", amount=annual, per_seat=per_seat, actor=staff.author)
    for feature, grant in grants.items():
        services.set_entitlement(tenant, owner=tier, feature=feature, grant=grant, actor=staff.author)
    return _publish(tenant, tier, staff)


def _limit(value: int | None, *, soft: bool = False, note: str = "") -> Grant:
    return Grant(
        enabled=True,
        limit=value,
        enforcement=Enforcement.SOFT if soft else Enforcement.HARD,
        soft_limit_percent=80,
        overage_note=note,
    )


ON = Grant(enabled=True)
OFF = Grant(enabled=False)


def seed_catalog(demo: DemoTenant, *, small: bool = False) -> dict[str, Tier]:
    """The demo tenant's catalog (or, with `small`, a three-tier one). Returns the published tiers by key."""
    tenant = demo.tenant
    staff = _staff(tenant)
    return _seed_small(tenant, staff) if small else _seed_full(tenant, staff)


def _seed_full(tenant: Tenant, staff: Staff) -> dict[str, Tier]:
    product = services.ensure_product(
        tenant,
        key="analytics",
        name="Acme Analytics",
        actor=staff.author,
        description="Dashboards, reporting API and data pipelines for product teams.",
    )
    f = {
        "seats": _feature(
            tenant,
            product,
            "seats",
            "Team members",
            FeatureKind.SEATS,
            "seats",
            "Everyone who needs the numbers works from the same dashboards.",
            1,
        ),
        "api_calls": _feature(
            tenant,
            product,
            "api_calls",
            "API calls",
            FeatureKind.METERED,
            "API calls / month",
            "Automate reporting from your own systems instead of exporting by hand.",
            2,
        ),
        "projects": _feature(
            tenant,
            product,
            "projects",
            "Projects",
            FeatureKind.METERED,
            "projects",
            "Keep each client or product line separate and tidy.",
            3,
        ),
        "storage": _feature(
            tenant,
            product,
            "storage",
            "Data storage",
            FeatureKind.METERED,
            "GB",
            "Keep enough history to see trends, not just last week.",
            4,
        ),
        "sso": _feature(
            tenant,
            product,
            "sso",
            "Single sign-on (SAML)",
            FeatureKind.BOOLEAN,
            "",
            "One login your IT team controls; offboarding takes one click.",
            5,
        ),
        "audit_log": _feature(
            tenant,
            product,
            "audit_log",
            "Audit log",
            FeatureKind.BOOLEAN,
            "",
            "Show auditors who changed what and when, in minutes.",
            6,
        ),
        "priority_support": _feature(
            tenant,
            product,
            "priority_support",
            "Priority support",
            FeatureKind.BOOLEAN,
            "",
            "A named engineer answers within 4 business hours.",
            7,
        ),
    }
    _meter(tenant, f["api_calls"], "api_calls", "API calls", "api.call", "count", window="calendar_month")
    _meter(tenant, f["projects"], "projects", "Active projects", "project.active", "unique_count", "project_id")
    _meter(tenant, f["storage"], "storage", "Storage used", "storage.measured", "max", "gb", window="calendar_month")
    _meter(
        tenant,
        f["seats"],
        "seats",
        "Active members",
        "user.active",
        "unique_count",
        "user_id",
        window="rolling_days",
        days=30,
    )

    tiers = {
        "free": _tier(
            tenant,
            staff,
            product,
            "free",
            name="Free",
            rank=10,
            is_free=True,
            default_trial_days=0,
            prices=(None, None),
            tagline="See your product's numbers in one place.",
            outcomes=["A live dashboard in ten minutes", "Share a report link with your team"],
            who_for="Founders and small teams getting their first shared dashboard.",
            grants={
                f["seats"]: _limit(3),
                f["api_calls"]: _limit(10_000),
                f["projects"]: _limit(2),
                f["storage"]: _limit(1),
                f["sso"]: OFF,
                f["audit_log"]: OFF,
                f["priority_support"]: OFF,
            },
        ),
        "team": _tier(
            tenant,
            staff,
            product,
            "team",
            name="Team",
            rank=20,
            prices=(2_500, 25_000),
            tagline="Stop rebuilding the same report every Monday.",
            outcomes=[
                "Weekly reporting automated, not copy-pasted",
                "Every client in its own project",
                "Alerts before a metric goes wrong",
            ],
            who_for="Teams of 5–25 who report to clients or leadership every week.",
            grants={
                f["seats"]: _limit(25),
                f["api_calls"]: _limit(
                    250_000, soft=True, note="We'll warn you at 80 % and never cut you off mid-month."
                ),
                f["projects"]: _limit(20),
                f["storage"]: _limit(50),
                f["sso"]: OFF,
                f["audit_log"]: OFF,
                f["priority_support"]: OFF,
            },
        ),
        "business": _tier(
            tenant,
            staff,
            product,
            "business",
            name="Business",
            rank=30,
            prices=(5_900, 59_000),
            tagline="Reporting your security team signs off on.",
            outcomes=[
                "Audit-ready access control with SSO",
                "Answer an auditor's question in minutes",
                "Automations that scale with your data",
            ],
            who_for="Companies with an IT or compliance team and 25–250 people using data daily.",
            grants={
                f["seats"]: _limit(250),
                f["api_calls"]: _limit(2_000_000, soft=True),
                f["projects"]: _limit(UNLIMITED),
                f["storage"]: _limit(500),
                f["sso"]: ON,
                f["audit_log"]: ON,
                f["priority_support"]: OFF,
            },
        ),
        "enterprise": _tier(
            tenant,
            staff,
            product,
            "enterprise",
            name="Enterprise",
            rank=40,
            is_anchor=True,
            prices=(11_900, 114_000),
            default_trial_days=30,
            tagline="Analytics as dependable as your own infrastructure.",
            outcomes=[
                "No ceilings: unlimited members, calls and projects",
                "A named engineer within 4 hours",
                "Five years of history for board-level trends",
            ],
            who_for="Organisations that run on data across many teams and regions.",
            grants={
                f["seats"]: _limit(UNLIMITED),
                f["api_calls"]: _limit(UNLIMITED),
                f["projects"]: _limit(UNLIMITED),
                f["storage"]: _limit(5_000),
                f["sso"]: ON,
                f["audit_log"]: ON,
                f["priority_support"]: ON,
            },
        ),
    }

    addons = {}
    for key, fields, prices, grants, compatible in (
        (
            "compliance-pack",
            {"name": "Compliance pack", "description": "Audit log and 100 GB of retained history for regulated teams."},
            (4_900, 49_000),
            {f["audit_log"]: ON, f["storage"]: _limit(100)},
            ["team"],
        ),
        (
            "api-boost",
            {"name": "API boost", "description": "One million more API calls a month for heavy automation."},
            (9_900, 99_000),
            {f["api_calls"]: _limit(1_000_000)},
            ["team", "business"],
        ),
    ):
        addon = _exists(tenant, AddOn, key)
        if addon is None:
            addon = services.create_draft(
                tenant,
                model=AddOn,
                actor=staff.author,
                product=product,
                key=key,
                compatible_tiers=[tiers[k] for k in compatible],
                **fields,
            )
            services.set_price(
                tenant, owner=addon, interval="month", amount=prices[0], per_seat=False, actor=staff.author
            )
            services.set_price(
                tenant, owner=addon, interval="year", amount=prices[1], per_seat=False, actor=staff.author
            )
            for feature, grant in grants.items():
                services.set_entitlement(tenant, owner=addon, feature=feature, grant=grant, actor=staff.author)
            addon = _publish(tenant, addon, staff)
        addons[key] = addon

    for key, fields, tier_key, addon_keys in (
        (
            "healthcare-clinics",
            {
                "name": "Clinic operations",
                "audience_kind": "industry",
                "audience": "healthcare",
                "description": "Team plus the Compliance pack: patient-flow reporting that passes a HIPAA review.",
                "scenarios": [
                    {
                        "title": "A 20-person clinic group",
                        "story": "Northside Clinics replaced Monday spreadsheets with Team dashboards. With the "
                        "Compliance pack their quarterly access review went from two weeks of screenshots to "
                        "one audit-log export in an afternoon.",
                    },
                    {
                        "title": "A physiotherapy chain opening its fifth site",
                        "story": "Each site is its own project, so managers see only their numbers while head office "
                        "compares all five, and history is kept long enough to show seasonal demand.",
                    },
                ],
            },
            "team",
            ["compliance-pack"],
        ),
        (
            "fintech-scale",
            {
                "name": "Fintech scale-up",
                "audience_kind": "industry",
                "audience": "fintech",
                "description": "Business plus API boost for reconciliation and risk reporting at volume.",
                "scenarios": [
                    {
                        "title": "A payments start-up with 60 engineers",
                        "story": "Nightly reconciliation jobs make 2.5 million API calls at month-end. With API boost "
                        "they stopped throttling jobs, and SSO let their auditor tick off access control in "
                        "one meeting.",
                    },
                ],
            },
            "business",
            ["api-boost"],
        ),
    ):
        if _exists(tenant, Bundle, key) is None:
            bundle = services.create_draft(
                tenant,
                model=Bundle,
                actor=staff.author,
                key=key,
                tier=tiers[tier_key],
                addons=[addons[k] for k in addon_keys],
                **fields,
            )
            _publish(tenant, bundle, staff)

    if _exists(tenant, DiscountPolicy, "standard") is None:
        policy = services.create_draft(
            tenant,
            model=DiscountPolicy,
            actor=staff.author,
            key="standard",
            name="Standard commitment policy",
            term_rules=[{"years": 1, "percent": "0"}, {"years": 2, "percent": "10"}, {"years": 3, "percent": "15"}],
            volume_rules=[
                {"min_seats": 1, "max_seats": 49, "percent": "0"},
                {"min_seats": 50, "max_seats": 199, "percent": "5"},
                {"min_seats": 200, "max_seats": None, "percent": "10"},
            ],
            combination="add",
            cap_percent=25,
            loyalty_percent=5,
            exception_approver_role=Role.OWNER,
        )
        _publish(tenant, policy, staff)

    # One change waiting for a second pair of eyes, so governance can be tried straight away:
    # Team v2 raises the API allowance and the price; pm@ submitted it, pm2@ (or an owner) approves.
    # The stable key is "Team has only its first version": whatever became of v2 (approved, published,
    # returned, retired, revised again) was someone's doing, and re-seeding must not add a v3.
    team = tiers["team"]
    if (
        team.state == GovernanceState.PUBLISHED
        and team.version == 1
        and not Tier.objects.for_tenant(tenant).filter(key="team").exclude(version=1).exists()
    ):
        v2 = services.revise(tenant, obj=team, actor=staff.author).obj
        services.update_draft(
            tenant, obj=v2, actor=staff.author, outcomes=[*team.outcomes, "Room for 300k automated calls a month"]
        )
        services.set_price(tenant, owner=v2, interval="month", amount=2_900, actor=staff.author)
        services.set_price(tenant, owner=v2, interval="year", amount=29_000, actor=staff.author)
        services.set_entitlement(
            tenant,
            owner=v2,
            feature=f["api_calls"],
            actor=staff.author,
            grant=_limit(300_000, soft=True, note="We'll warn you at 80 % and never cut you off mid-month."),
        )
        services.submit_for_approval(tenant, obj=v2, actor=staff.author)
    return tiers


def _seed_small(tenant: Tenant, staff: Staff) -> dict[str, Tier]:
    product = services.ensure_product(tenant, key="cloud", name="Globex Cloud", actor=staff.author)
    seats = _feature(tenant, product, "seats", "Users", FeatureKind.SEATS, "users", "", 1)
    calls = _feature(tenant, product, "api_calls", "API calls", FeatureKind.METERED, "API calls / month", "", 2)
    sso = _feature(tenant, product, "sso", "Single sign-on", FeatureKind.BOOLEAN, "", "", 3)
    _meter(tenant, calls, "api_calls", "API calls", "api.call", "count", window="calendar_month")
    return {
        "free": _tier(
            tenant,
            staff,
            product,
            "free",
            name="Free",
            rank=10,
            is_free=True,
            prices=(None, None),
            grants={seats: _limit(2), calls: _limit(5_000), sso: OFF},
        ),
        "pro": _tier(
            tenant,
            staff,
            product,
            "pro",
            name="Pro",
            rank=20,
            prices=(3_900, 39_000),
            grants={seats: _limit(50), calls: _limit(500_000), sso: OFF},
        ),
        "scale": _tier(
            tenant,
            staff,
            product,
            "scale",
            name="Scale",
            rank=30,
            is_anchor=True,
            prices=(9_900, 99_000),
            grants={seats: _limit(UNLIMITED), calls: _limit(UNLIMITED), sso: ON},
        ),
    }


SEED_ACTOR = "demo-seed"  # the audit log's actor for everything the seed writes (billing's seed uses it too)


def seed_catalogs(demo: DemoTenant, other: DemoTenant) -> None:
    """Called once from seed_demo: the full catalog for the demo tenant, a small one for the other."""
    with services.audited_as(SEED_ACTOR):
        with tenant_context(demo.tenant):  # row-level security: each tenant's rows inside it
            seed_catalog(demo)
        with tenant_context(other.tenant):
            seed_catalog(other, small=True)
