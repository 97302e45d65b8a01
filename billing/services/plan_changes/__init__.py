"""The upgrade hand-off: quote -> confirm -> Stripe -> settle (or fail, retry, cancel).

Invariants (DESIGN.md "Stripe"):
- The licence changes only in `settle_plan_change`, after Stripe says the invoice is paid
  (or, for a downgrade at the period end, after Stripe accepted the change). Stripe is
  asked with `payment_behavior="pending_if_incomplete"`, so it too applies the change only
  once the payment succeeds.
- A payment is never taken twice for one plan change: the subscription update carries
  `PlanChange.idempotency_key` and the exact item list stored with the quote (a retried
  task replays Stripe's first answer), and a payment retry pays the same open invoice.
- Quote == charge: the proration date is pinned in the quote and sent with the update;
  at settlement the invoice's lines are compared with the quoted lines and any difference
  is stored in `charge_mismatch` and audited.
- Stripe is called outside database transactions; each outcome is then written in a short
  atomic block that locks the PlanChange and re-checks its state (so sync answer, webhook
  and reconciliation may race and only the first one acts).

Modules, by sub-domain (a package since the module passed ~400 lines, STYLE.md):
- `quoting`: the quote (validation, kind, the Stripe preview, the stored lines); `estimate`: our own proration
- `confirmation`: confirm, retry a failed payment, cancel
- `submission`: the task bodies that call Stripe (submit, pay again, give up)
- `settlement`: reconcile with Stripe, settle (quote == charge compared) or fail; the stale-change beat
- `downgrades`: changes scheduled for the period end
- `first_purchase`: the first paid subscription from a free licence
- `common`: the row lock and whether the licence is still what the quote was made from
Stripe failures are translated once, by `billing.errors.stripe_errors_translated`.
Only the names other modules use are re-exported here; the rest live in their module.
"""

from __future__ import annotations

from billing.services.plan_changes.confirmation import cancel_plan_change, confirm_plan_change, retry_plan_change
from billing.services.plan_changes.downgrades import apply_due_plan_changes
from billing.services.plan_changes.first_purchase import PLAN_CHANGE_METADATA_KEY
from billing.services.plan_changes.quoting import quote_plan_change
from billing.services.plan_changes.settlement import reconcile_plan_change, reconcile_stale_plan_changes
from billing.services.plan_changes.submission import give_up_plan_change, retry_plan_change_payment, submit_plan_change

__all__ = [
    "PLAN_CHANGE_METADATA_KEY",
    "apply_due_plan_changes",
    "cancel_plan_change",
    "confirm_plan_change",
    "give_up_plan_change",
    "quote_plan_change",
    "reconcile_plan_change",
    "reconcile_stale_plan_changes",
    "retry_plan_change",
    "retry_plan_change_payment",
    "submit_plan_change",
]
