"""Extension points for apps that sit above catalog in the import order.

catalog may not import billing (billing imports catalog), yet retiring a tier must say
how many active licences still hold it. billing registers a counter here from its
AppConfig.ready(); until it does, the count is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from accounts.models import Tenant

HolderCounter = Callable[[Tenant, list[int]], int]

_holder_counters: list[HolderCounter] = []


def register_holder_counter(fn: HolderCounter) -> HolderCounter:
    """Register `fn(tenant, tier_ids) -> int` (active licences holding any of those tier rows).

    Idempotent: registering the same function twice (AppConfig.ready() can run twice
    in tests) keeps one copy. Usable as a decorator.
    """
    if fn not in _holder_counters:
        _holder_counters.append(fn)
    return fn


def unregister_holder_counter(fn: HolderCounter) -> None:
    if fn in _holder_counters:
        _holder_counters.remove(fn)


def count_holders(tenant: Tenant, tier_ids: Iterable[int]) -> int:
    """Active licences holding any of `tier_ids`, summed over every registered counter."""
    ids = sorted({int(i) for i in tier_ids})
    if not ids:
        return 0
    return sum(int(fn(tenant, ids)) for fn in _holder_counters)
