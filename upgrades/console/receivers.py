"""Billing says a plan change settled; the proposal that asked for it (reference proposal:<id>) is fulfilled.
Connected in upgrades.apps ready(); never fails billing's commit hook."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def on_plan_change_settled(sender: Any, *, tenant_id: int, plan_change_id: int, reference: str = "", **kwargs: Any):
    from accounts.models import Tenant
    from accounts.tenancy import tenant_context
    from upgrades.console.services.proposals import REFERENCE, fulfil_settled

    if not (reference or "").startswith(REFERENCE):
        return
    with tenant_context(tenant_id):
        try:
            fulfil_settled(Tenant.objects.get(pk=tenant_id), plan_change_id=plan_change_id, reference=reference)
        except Exception:
            log.exception("Proposal for settled plan change %s not fulfilled", plan_change_id)


def connect() -> None:
    from billing.signals import plan_change_settled

    plan_change_settled.connect(on_plan_change_settled, dispatch_uid="console-proposal-settled")
