"""Celery tasks of the offer engine: build one offer, build a batch, and the sweep (beat) that finds
open signals the live settings make offers for.

Each takes ids, calls one service and is safe to run twice (the offer is one arbitrated write; a
signal acted on returns its offer). Enqueued with transaction.on_commit.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

log = logging.getLogger(__name__)

LIMITS = {"soft_time_limit": 240, "time_limit": 300}
BATCH_SIZE = 200  # a batch is priced and written set-based: a fixed number of queries per batch


@shared_task(acks_late=True, **LIMITS)
def build_offer(tenant_id: int, account_id: int, signal_id: int | None = None) -> int | None:
    """The offer for one account (and signal); returns its id, or None when nothing is offered."""
    from accounts.models import CustomerAccount, Tenant
    from upgrades.offers.errors import Conflict, InvalidInput
    from upgrades.offers.services import building
    from upgrades.rules.models import Signal

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    account = CustomerAccount.objects.for_tenant(tenant_id).filter(pk=account_id).first() if tenant else None
    if tenant is None or account is None:
        return None
    signal = None
    if signal_id is not None:
        signal = Signal.objects.for_tenant(tenant).filter(pk=signal_id, account_id=account_id).first()
        if signal is None:
            return None
    try:
        offer = building.build_offer(
            tenant, account=account, actor=building.ENGINE_ACTOR, signal=signal, automatic=signal is not None
        )
    except (InvalidInput, Conflict) as exc:  # a refusal, not a failure: retrying would refuse again
        log.info("offer not built", extra={"tenant": tenant_id, "account": account_id, "code": exc.code})
        return None
    return offer.pk


@shared_task(acks_late=True, **LIMITS)
def build_offers_batch(tenant_id: int, signal_ids: list[int]) -> int:
    """Offers for a batch of one tenant's signals (one catalog snapshot); returns how many exist now."""
    from accounts.models import Tenant
    from upgrades.offers.errors import InvalidInput
    from upgrades.offers.services import building

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    try:
        return len(building.build_offers_for_signals(tenant, signal_ids=signal_ids))
    except InvalidInput:  # no live settings any more
        return 0


def enqueue_batches(tenant_id: int, signal_ids: list[int], *, batch_size: int = BATCH_SIZE) -> int:
    """One build_offers_batch per `batch_size` signals, sent once the current transaction commits."""
    batches = [signal_ids[i : i + batch_size] for i in range(0, len(signal_ids), batch_size)]
    for batch in batches:
        transaction.on_commit(lambda b=batch: build_offers_batch.delay(tenant_id, b))
    return len(batches)


@shared_task(acks_late=True, **LIMITS)
def sweep_offer_signals() -> int:
    """Beat: for each tenant (inside its context), its open signals of kinds the live settings allow,
    in batches; a signal sent is not sent again for 10 minutes (building.signals_to_sweep). Running it
    twice at once only re-sends work that finds its offers already made."""
    from accounts.tenancy import each_tenant
    from upgrades.offers.services.building import signals_to_sweep

    sent = 0
    for tenant in each_tenant():
        sent += enqueue_batches(tenant.pk, signals_to_sweep(tenant))
    return sent
