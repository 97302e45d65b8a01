# ruff: noqa: S608  -- compiled SQL: every value is a bound parameter; only model table names are inlined.
"""Run a compiled condition tree: one SQL query finds the matching accounts of a tenant."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction

from upgrades.rules.conditions import Condition, EvalContext, SqlQuery
from upgrades.rules.conditions.tables import tables

IDS_PER_QUERY = 5000
WORK_MEM = "64MB"


def compile_tree(tree: Condition, ctx: EvalContext, *, account_ids: Sequence[int] | None = None) -> tuple[str, list]:
    q = SqlQuery(ctx, vendor=connection.vendor, ops=connection.ops, account_ids=account_ids)
    head = f"SELECT a.id FROM {tables().account} a WHERE a.tenant_id = {q.tenant()}"
    if account_ids is not None:
        head += f" AND {q.among('a.id')}"
    return f"{head} AND {tree.compile(q)} ORDER BY a.id", q.params


def matching_account_ids(tree: Condition, ctx: EvalContext, *, account_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of the tenant's accounts (optionally among `account_ids`) for which the tree holds at ctx.now."""
    batches: list[Sequence[int] | None] = [None]
    if account_ids is not None:
        ids = list(account_ids)
        batches = [ids[i : i + IDS_PER_QUERY] for i in range(0, len(ids), IDS_PER_QUERY)]
    found: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A tenant-wide match groups every account's rollups: let it hash in memory rather than
            # sort on disk (SET LOCAL: this transaction only, safe behind a transaction-mode pooler).
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        for batch in batches:
            sql, params = compile_tree(tree, ctx, account_ids=batch)
            cursor.execute(sql, params)
            found.extend(row[0] for row in cursor.fetchall())
    return found
