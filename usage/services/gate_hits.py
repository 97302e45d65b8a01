"""Feature-gate hits: a denied check or a use of a locked feature, stored as an ordinary event."""

from __future__ import annotations

import datetime
import json
import uuid

from django.utils import timezone

from accounts.models import Tenant
from usage.models import FEATURE_GATE_HIT_EVENT
from usage.services.writes import _Row, meters_by_event, write_events


def record_feature_gate_hit(
    tenant: Tenant,
    *,
    account_id: int,
    feature_key: str,
    quantity: int,
    reason: str,
    now: datetime.datetime | None = None,
) -> None:
    """A denied check or a use of a locked feature, stored as an ordinary event for trigger rules."""
    now = now or timezone.now()
    properties = {"feature": feature_key, "quantity": quantity, "reason": reason}
    encoded = json.dumps(properties, separators=(",", ":"))
    row: _Row = (0, account_id, FEATURE_GATE_HIT_EVENT, now, f"gate:{uuid.uuid4().hex}", properties, encoded)
    write_events(tenant.pk, [row], specs_by_event=meters_by_event(tenant.pk), received_at=now)
