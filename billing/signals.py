"""The only ways billing tells apps above it that something happened (imports go down).

Both are sent with `transaction.on_commit`, so receivers see committed rows.
"""

from django.dispatch import Signal

# A licence or one of its grants changed: tier, add-ons, seats, status, grant started/ended.
# kwargs: tenant_id: int, account_id: int. usage invalidates cached entitlements on it.
license_changed = Signal()

# A PlanChange settled (payment succeeded and the licence changed).
# kwargs: tenant_id: int, account_id: int, plan_change_id: int, reference: str. upgrades marks offers fulfilled.
plan_change_settled = Signal()
