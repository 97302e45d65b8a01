"""Table names the compiled SQL reads, taken from the models (never spelled twice)."""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Tables:
    account: str
    rollup: str
    distinct: str
    event: str
    license: str
    grant: str
    tier: str
    user: str
    limit: str


@functools.cache
def tables() -> Tables:
    from accounts.models import CustomerAccount, User
    from billing.models import License, LicenseGrant
    from catalog.models import Tier
    from upgrades.rules.models import AccountLimit
    from usage.models import Event, UsageDistinctValue, UsageRollup

    return Tables(
        account=CustomerAccount._meta.db_table,
        rollup=UsageRollup._meta.db_table,
        distinct=UsageDistinctValue._meta.db_table,
        event=Event._meta.db_table,
        license=License._meta.db_table,
        grant=LicenseGrant._meta.db_table,
        tier=Tier._meta.db_table,
        user=User._meta.db_table,
        limit=AccountLimit._meta.db_table,
    )
