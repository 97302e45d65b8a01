"""Billing tells upgrades that a plan change settled; the offer that asked for it becomes fulfilled.

Connected in `upgrades.apps.UpgradesConfig.ready()`. The account's trials whose target the new plan
holds are converted too (they keep running to the promised end). The signal is sent on billing's commit, inside
billing's worker or request: a failure here is logged and never undoes (or fails) the settlement;
the expiry sweep catches up any accepted offer whose plan change settled.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

OFFER_REFERENCE = "offer:"


def on_plan_change_settled(
    sender: Any, *, tenant_id: int, plan_change_id: int, reference: str = "", **kwargs: Any
) -> None:
    from accounts.tenancy import tenant_context

    with tenant_context(tenant_id):
        try:
            fulfil_settled_plan_change(tenant_id, plan_change_id=plan_change_id, reference=reference)
        except Exception:  # never fail billing's commit hook; the sweep catches up
            log.exception("Offer for settled plan change %s not fulfilled", plan_change_id)
        try:
            convert_trials(tenant_id, plan_change_id=plan_change_id)
        except Exception:
            log.exception("Trials not converted after settled plan change %s", plan_change_id)


def fulfil_settled_plan_change(tenant_id: int, *, plan_change_id: int, reference: str = "") -> None:
    from accounts.models import Tenant
    from billing.models import PlanChange
    from upgrades.offers import selectors
    from upgrades.offers.models import Offer
    from upgrades.offers.services.acceptance import fulfil_offer

    tenant = Tenant.objects.get(pk=tenant_id)
    plan_change = PlanChange.objects.for_tenant(tenant).filter(pk=plan_change_id).first()
    if plan_change is None:
        return
    offer = selectors.offer_for_plan_change(tenant, plan_change_id)
    if offer is None and reference.startswith(OFFER_REFERENCE) and reference[len(OFFER_REFERENCE) :].isdigit():
        offer = Offer.objects.for_tenant(tenant).filter(pk=int(reference[len(OFFER_REFERENCE) :])).first()
    if offer is None:
        return
    fulfil_offer(tenant, offer=offer, plan_change=plan_change)


def convert_trials(tenant_id: int, *, plan_change_id: int) -> None:
    from accounts.models import Tenant
    from billing.models import PlanChange
    from upgrades.offers.services.trials import convert_trial_on_settle

    tenant = Tenant.objects.get(pk=tenant_id)
    plan_change = (
        PlanChange.objects.for_tenant(tenant).select_related("account", "target_price__tier").filter(pk=plan_change_id)
    ).first()
    if plan_change is not None:
        convert_trial_on_settle(tenant, account=plan_change.account, plan_change=plan_change)


def connect() -> None:
    from billing.signals import plan_change_settled

    plan_change_settled.connect(on_plan_change_settled, dispatch_uid="upgrades.offers.fulfil_on_settle")
