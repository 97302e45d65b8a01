"""Extension points for apps that sit above catalog in the import order.

catalog may not import billing (billing imports catalog), yet retiring a tier must say
how many active licences still hold it, and a review before publishing shows what those
licences bring in (MRR). billing registers a counter (and, optionally, an MRR summer for the
same licences) here from its AppConfig.ready(); until it does, the count is 0 and the MRR empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from accounts.models import Tenant

HolderCounter = Callable[[Tenant, list[int]], int]
# `fn(tenant, tier_ids) -> {currency: MRR in minor units}` of the licences the counter counts.
HolderMrr = Callable[[Tenant, list[int]], Mapping[str, int]]

_holder_counters: list[HolderCounter] = []
_holder_mrr: dict[HolderCounter, HolderMrr] = {}


def register_holder_counter(fn: HolderCounter, *, mrr: HolderMrr | None = None) -> HolderCounter:
    """Register `fn(tenant, tier_ids) -> int` (active licences holding any of those tier rows),
    and with `mrr` what those same licences bring in per currency.

    Idempotent: registering the same function twice (AppConfig.ready() can run twice
    in tests) keeps one copy. Usable as a decorator.
    """
    if fn not in _holder_counters:
        _holder_counters.append(fn)
    if mrr is not None:
        _holder_mrr[fn] = mrr
    return fn


def unregister_holder_counter(fn: HolderCounter) -> None:
    if fn in _holder_counters:
        _holder_counters.remove(fn)
    _holder_mrr.pop(fn, None)


def count_holders(tenant: Tenant, tier_ids: Iterable[int]) -> int:
    """Active licences holding any of `tier_ids`, summed over every registered counter."""
    ids = sorted({int(i) for i in tier_ids})
    if not ids:
        return 0
    return sum(int(fn(tenant, ids)) for fn in _holder_counters)


def holders_mrr(tenant: Tenant, tier_ids: Iterable[int]) -> dict[str, int]:
    """MRR (minor units, per currency, never added across currencies) of the licences `count_holders` counts."""
    ids = sorted({int(i) for i in tier_ids})
    totals: dict[str, int] = {}
    if not ids:
        return totals
    for fn in _holder_counters:
        summer = _holder_mrr.get(fn)
        for currency, amount in (summer(tenant, ids) if summer else {}).items():
            totals[currency] = totals.get(currency, 0) + int(amount)
    return totals
