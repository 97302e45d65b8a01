"""The set-based offer write of a batch (build_offers_for_signals): one arbitrated INSERT for all.

`INSERT ... ON CONFLICT DO NOTHING RETURNING` under the partial unique constraint
`offer_one_open_per_account_target`: the rows the database took are ours (created); for the others an
open offer already exists (another worker, an earlier build) and is read back under a row lock, a draft
refreshed with today's numbers exactly as `building._write` does for one offer. Never "select, then
insert": concurrent batches both insert and the database arbitrates.
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db import connection
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

from accounts.models import Tenant
from accounts.services import Actor, actor_label, record_audits
from upgrades.offers.models import OPEN_STATES, Offer, OfferEvent, OfferState

Key = tuple[int, str, str]


def _key(offer: Offer) -> Key:
    return (offer.account_id, offer.target_kind, offer.target_key)


def _insert_ignoring_conflicts(objs: list[Offer]) -> dict[Key, int]:
    """One INSERT of `objs`; the ids of the rows inserted, by (account, target). Conflicting rows are skipped."""
    fields = [f for f in Offer._meta.concrete_fields if not f.primary_key]
    query = InsertQuery(Offer, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, objs, raw=False)
    compiler = query.get_compiler(connection=connection)
    taken: dict[Key, int] = {}
    with connection.cursor() as cursor:
        for sql, params in compiler.as_sql():
            cursor.execute(f"{sql} RETURNING id, account_id, target_kind, target_key", params)
            for pk, account_id, kind, key in cursor.fetchall():
                taken[(account_id, kind, key)] = pk
    return taken


def write_offers(
    tenant: Tenant, *, planned: list[tuple[Any, Any, dict]], actor: Actor, now: datetime
) -> list[tuple[Offer, bool]]:
    """(offer, created) for each planned (signal, recommendation, fields), in order. Two planned offers for
    the same account and target make one: the first is written, the later ones get it (created=False)."""
    from upgrades.offers.services.building import SNAPSHOT_FIELDS, _write
    from upgrades.offers.services.lifecycle import lock_offer

    label = actor_label(actor)[:200]
    first: dict[Key, Offer] = {}
    order: list[Key] = []
    for signal, rec, fields in planned:
        key = (signal.account_id, rec.target_kind, rec.target_key)
        order.append(key)
        if key not in first:
            first[key] = Offer(tenant=tenant, account=signal.account, target_kind=rec.target_kind,
                               target_key=rec.target_key, state=OfferState.DRAFT, created_by_label=label,
                               created_at=now, **fields)  # fmt: skip
    if not first:
        return []
    taken = _insert_ignoring_conflicts(list(first.values()))
    created: set[Key] = set()
    for key, obj in first.items():
        if key in taken:
            obj.pk = taken[key]
            obj._state.adding, obj._state.db = False, connection.alias
            created.add(key)
    existing: dict[Key, Offer] = {}
    others = [k for k in first if k not in created]
    if others:
        wanted = reduce(or_, (Q(account_id=a, target_kind=k, target_key=t) for a, k, t in others))
        for offer in (
            Offer.objects.for_tenant(tenant).select_for_update().filter(wanted, state__in=OPEN_STATES).order_by("pk")
        ):
            existing[_key(offer)] = offer
    result: dict[Key, tuple[Offer, bool]] = {}
    for key, obj in first.items():
        if key in created:
            result[key] = (obj, True)
        elif key in existing:
            offer = existing[key]
            if offer.state == OfferState.DRAFT:  # still nobody saw it: refreshed with today's numbers
                for name in SNAPSHOT_FIELDS:
                    setattr(offer, name, getattr(obj, name))
                offer.save(update_fields=[*SNAPSHOT_FIELDS, "updated_at"])
            result[key] = (offer, False)
        else:  # the conflicting offer closed meanwhile: the one-offer path decides (insert or take it)
            signal, rec, fields = next(p for p, k in zip(planned, order, strict=True) if k == key)
            offer, made = _write(tenant, account=signal.account, rec=rec, fields=fields, actor=actor, now=now)
            result[key] = (lock_offer(tenant, offer) if not made else offer, made)
            if made:
                created.add(key)
                continue  # _write wrote its event and audit
    fresh = [result[k][0] for k in first if k in created and k in taken]
    if fresh:
        OfferEvent.objects.bulk_create(
            [
                OfferEvent(
                    tenant=tenant,
                    offer=o,
                    from_state="",
                    to_state=OfferState.DRAFT,
                    actor_label=label,
                    note="built",
                    at=now,
                )
                for o in fresh
            ]  # fmt: skip
        )
        record_audits(tenant, actor=actor, entries=[
            ("offer.built", o, None, {"account": o.account.external_id, "target_kind": o.target_kind,
                                      "target_key": o.target_key, "signal": o.signal_id,
                                      "recommended_option": o.recommended_option,
                                      "sentence": (o.evidence or {}).get("sentence", "")})
            for o in fresh
        ])  # fmt: skip
    seen: set[Key] = set()
    out = []
    for key in order:
        offer, made = result[key]
        out.append((offer, made and key not in seen))
        seen.add(key)
    return out
