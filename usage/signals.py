"""The only way usage tells apps above it that events arrived (imports go down: usage never imports upgrades).

Sent with `transaction.on_commit`, once per stored batch, so receivers see committed rows
and a rolled-back batch sends nothing. Receivers run through `send_robust`: one that raises
is logged and never turns a stored batch into a failure for the sender.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# A batch stored at least one new event (API ingest, a feature-gate hit from a check, the demo seed).
# kwargs: tenant_id: int, account_ids: list[int] (sorted, distinct; the accounts of the stored events).
# upgrades.rules connects to it to mark accounts dirty for re-evaluation.
events_ingested = Signal()


def _send_events_ingested(tenant_id: int, account_ids: list[int]) -> None:
    for receiver, result in events_ingested.send_robust(sender=None, tenant_id=tenant_id, account_ids=account_ids):
        if isinstance(result, BaseException):
            logger.error(
                "events_ingested receiver failed",
                exc_info=result,
                extra={"receiver": getattr(receiver, "__qualname__", repr(receiver)), "tenant_id": tenant_id},
            )


def send_events_ingested_on_commit(tenant_id: int, account_ids: Iterable[int]) -> None:
    """Schedule one `events_ingested` for the batch being written (call inside its transaction)."""
    ids = sorted(set(account_ids))
    if not ids or not events_ingested.has_listeners():
        return
    transaction.on_commit(lambda: _send_events_ingested(tenant_id, ids))
