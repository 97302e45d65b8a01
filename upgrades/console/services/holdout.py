"""Experiment controls get no upgrade outreach from the console (PRODUCT: a control group is a promise).

While an account sits in the control arm of a running experiment, the console neither suggests nor allows
upgrade outreach: no proposal is built or shared, no upgrade outreach or trial is recorded. A check-in that
is not about an upgrade stays allowed, so the account is still looked after."""

from __future__ import annotations

from accounts.errors import Conflict
from accounts.models import Tenant
from upgrades.experiments.selectors import held_out_account_ids, is_held_out

HELD_OUT_TEXT = "in a control group — no upgrade outreach"
HELD_OUT_CODE = "held_out"

__all__ = ["HELD_OUT_CODE", "HELD_OUT_TEXT", "held_out_account_ids", "is_held_out", "require_not_held_out"]


def require_not_held_out(tenant: Tenant, account_id: int, *, doing: str) -> None:
    """Refuse `doing` (e.g. "share a proposal") for an account in a running experiment's control group."""
    if is_held_out(tenant, account_id):
        raise Conflict(
            f"This account is {HELD_OUT_TEXT} while its experiment runs, so you cannot {doing}. "
            "A check-in that is not about an upgrade is still fine.",
            code=HELD_OUT_CODE,
        )
