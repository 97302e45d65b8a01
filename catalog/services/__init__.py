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

from catalog.services._base import (
    EDITABLE_FIELDS,
    GOVERNANCE_FIELDS,
    M2M_FIELDS,
    TransitionResult,
    audited_as,
)
from catalog.services.drafts import (
    Grant,
    MatrixCell,
    create_draft,
    delete_draft,
    remove_entitlement,
    remove_price,
    replace_prices,
    save_draft,
    set_entitlement,
    set_entitlement_matrix,
    set_price,
    update_draft,
)
from catalog.services.governance import (
    TRANSITIONS,
    approve,
    ensure_product,
    four_eyes_refusal,
    publish,
    retire,
    return_to_draft,
    revise,
    submit_for_approval,
)
from catalog.services.rules import addon_issues, current_tier_ladder, readiness_issues, tier_issues

__all__ = [
    "EDITABLE_FIELDS",
    "GOVERNANCE_FIELDS",
    "M2M_FIELDS",
    "TRANSITIONS",
    "Grant",
    "MatrixCell",
    "TransitionResult",
    "addon_issues",
    "approve",
    "audited_as",
    "create_draft",
    "current_tier_ladder",
    "delete_draft",
    "ensure_product",
    "four_eyes_refusal",
    "publish",
    "readiness_issues",
    "remove_entitlement",
    "remove_price",
    "replace_prices",
    "retire",
    "return_to_draft",
    "revise",
    "save_draft",
    "set_entitlement",
    "set_entitlement_matrix",
    "set_price",
    "submit_for_approval",
    "tier_issues",
    "update_draft",
]
