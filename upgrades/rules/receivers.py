"""Ingest marks accounts dirty; the dirty-account sweep (beat, every 30 s) evaluates them."""

from __future__ import annotations

from typing import Any


def on_events_ingested(sender: Any, *, tenant_id: int, account_ids: list[int], **kwargs: Any) -> None:
    from upgrades.rules.services import mark_accounts_dirty

    mark_accounts_dirty(tenant_id, account_ids)


def connect() -> None:
    from usage.signals import events_ingested

    events_ingested.connect(on_events_ingested, dispatch_uid="upgrades.rules.mark_dirty")
