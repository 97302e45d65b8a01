"""Demo data for accounts: a vendor tenant with staff of every role, ~200 customers, and a look-alike tenant."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from accounts.models import (
    Contact,
    CustomerAccount,
    LifecycleStage,
    Membership,
    Role,
    Segment,
    SizeBand,
    Tenant,
    User,
)
from accounts.tenancy import tenant_context

DEMO_PASSWORD = "tierwise-demo"

INDUSTRIES = ["software", "healthcare", "fintech", "retail", "manufacturing", "education", "media", "logistics"]
TERRITORIES = ["NA-East", "NA-West", "EMEA", "APAC", "LATAM"]
NAME_A = [
    "Blue",
    "North",
    "Bright",
    "Quantum",
    "Silver",
    "Rapid",
    "Clear",
    "Green",
    "Iron",
    "Nimble",
    "Summit",
    "Harbor",
    "Atlas",
    "Cedar",
    "Delta",
    "Echo",
    "Falcon",
    "Granite",
    "Horizon",
    "Juniper",
]
NAME_B = ["Labs", "Health", "Freight", "Analytics", "Retail", "Systems", "Works", "Bank", "Learning", "Media"]
SIZE_EMPLOYEES = {
    SizeBand.MICRO: (2, 10),
    SizeBand.SMALL: (11, 50),
    SizeBand.MEDIUM: (51, 200),
    SizeBand.LARGE: (201, 1000),
    SizeBand.XLARGE: (1001, 5000),
    SizeBand.ENTERPRISE: (5001, 20000),
}


@dataclass
class DemoTenant:
    tenant: Tenant
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (role, email, password)
    accounts: list[CustomerAccount] = field(default_factory=list)


def _user(email: str, name: str) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, DEMO_PASSWORD, full_name=name)
    return user


def seed_tenant(*, slug: str, name: str, domain: str, account_count: int, seed: int) -> DemoTenant:
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name, "time_zone": "Europe/Berlin"})
    with tenant_context(tenant):  # row-level security: the tenant's rows are written inside it
        return _seed_tenant_rows(tenant, domain=domain, account_count=account_count, seed=seed)


def _seed_tenant_rows(tenant: Tenant, *, domain: str, account_count: int, seed: int) -> DemoTenant:
    demo = DemoTenant(tenant=tenant)
    staff = [
        (Role.OWNER, f"owner@{domain}", "Olivia Owner"),
        (Role.PRODUCT_MANAGER, f"pm@{domain}", "Priya Product"),
        (Role.PRODUCT_MANAGER, f"pm2@{domain}", "Paul Pricing"),
        (Role.CSM, f"csm@{domain}", "Carmen Success"),
        (Role.ANALYST, f"analyst@{domain}", "Ari Analyst"),
    ]
    csms = []
    for role, email, full_name in staff:
        user = _user(email, full_name)
        Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
        demo.logins.append((role.label, email, DEMO_PASSWORD))
        if role == Role.CSM:
            csms.append(user)
    # A colleague invited but not yet signed up: their invitation email waits in the outbox.
    invitee = f"new.hire@{domain}"
    if not Membership.all_objects.filter(tenant=tenant, user__email=invitee).exists():
        from accounts.invitations import add_member

        add_member(tenant, email=invitee, role=Role.CSM, actor="demo seed")

    rng = random.Random(seed)
    stages = [LifecycleStage.ACTIVE] * 6 + [
        LifecycleStage.ONBOARDING,
        LifecycleStage.TRIAL,
        LifecycleStage.EXPANSION,
        LifecycleStage.RENEWAL,
        LifecycleStage.AT_RISK,
    ]
    existing = {a.external_id: a for a in CustomerAccount.objects.for_tenant(tenant)}
    new_accounts, new_contacts = [], []
    for i in range(1, account_count + 1):
        external_id = f"cus_{i:04d}"
        band = rng.choice(list(SIZE_EMPLOYEES))
        low, high = SIZE_EMPLOYEES[band]
        company = f"{rng.choice(NAME_A)} {rng.choice(NAME_B)} {i}"
        segment = (
            Segment.SMB
            if band in (SizeBand.MICRO, SizeBand.SMALL)
            else Segment.MID_MARKET
            if band in (SizeBand.MEDIUM, SizeBand.LARGE)
            else Segment.ENTERPRISE
        )
        fields = dict(
            name=company,
            industry=rng.choice(INDUSTRIES),
            size_band=band,
            employee_count=rng.randint(low, high),
            segment=segment,
            territory=rng.choice(TERRITORIES),
            lifecycle_stage=rng.choice(stages),
            assigned_csm=csms[0] if csms and segment != Segment.SMB else None,
        )
        if external_id not in existing:
            account = CustomerAccount(tenant=tenant, external_id=external_id, **fields)
            new_accounts.append(account)
    CustomerAccount.objects.bulk_create(new_accounts)
    by_id = {a.external_id: a for a in CustomerAccount.objects.for_tenant(tenant)}
    for account in new_accounts:
        saved = by_id[account.external_id]
        slug_name = saved.name.lower().replace(" ", "")
        new_contacts.append(
            Contact(
                tenant=tenant,
                account=saved,
                email=f"admin@{slug_name}.example",
                name="Alex Admin",
                role="admin",
                marketing_consent=True,
            )
        )
    Contact.objects.bulk_create(new_contacts, ignore_conflicts=True)
    demo.accounts = sorted(by_id.values(), key=lambda a: a.external_id)
    return demo
