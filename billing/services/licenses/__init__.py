"""Licences: provisioning, MRR, revoke / suspend / restore, cancel and reactivate, grants, renewal.

Every write is atomic, audited, and announces itself with `license_changed` on commit.
Every write to a License row is in this package: plan-change settlement applies a settled
change through `apply_plan_change`, webhooks through `sync_license_from_subscription`,
`end_license` and `note_customer_delinquency`, the first purchase through `set_stripe_customer`.


A package by sub-domain (STYLE.md: split past ~400 lines): `records` (history, audit, lock, announce),
`money`, `provisioning`, `holds` (revoke / suspend / restore, cancel at period end), `stripe_sync`
(writes that follow Stripe and settlement), `grants`, `renewal`.
"""

from __future__ import annotations

from billing.services.licenses.grants import MAX_GRANT_DAYS, end_grant, expire_grants, start_grant
from billing.services.licenses.holds import restore_license, revoke_license, set_cancel_at_period_end, suspend_license
from billing.services.licenses.money import compute_mrr, interval_total, monthly_amount
from billing.services.licenses.provisioning import provision_license
from billing.services.licenses.records import LICENSE_AUDIT_FIELDS, announce, license_state, record_change
from billing.services.licenses.renewal import RENEWAL_LEAD, expected_renewal_total, renew_due_terms, renew_license_term
from billing.services.licenses.stripe_sync import (
    DELINQUENT_NOTE,
    STRIPE_STATUS,
    apply_plan_change,
    attach_stripe_subscription,
    end_license,
    note_customer_delinquency,
    set_stripe_customer,
    sync_license_from_subscription,
)

__all__ = [
    "DELINQUENT_NOTE",
    "LICENSE_AUDIT_FIELDS",
    "MAX_GRANT_DAYS",
    "RENEWAL_LEAD",
    "STRIPE_STATUS",
    "announce",
    "apply_plan_change",
    "attach_stripe_subscription",
    "compute_mrr",
    "end_grant",
    "end_license",
    "expected_renewal_total",
    "expire_grants",
    "interval_total",
    "license_state",
    "monthly_amount",
    "note_customer_delinquency",
    "provision_license",
    "record_change",
    "renew_due_terms",
    "renew_license_term",
    "restore_license",
    "revoke_license",
    "set_cancel_at_period_end",
    "set_stripe_customer",
    "start_grant",
    "suspend_license",
    "sync_license_from_subscription",
]
