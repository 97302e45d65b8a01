# ruff: noqa: S608  -- table and column names come from the models; every value is one bound JSON parameter.
"""Set-based writes of many rows in one statement per batch.

On PostgreSQL a batch is ONE `INSERT ... SELECT FROM jsonb_to_recordset(%s)` (the rows travel as
one JSON parameter, typed by the model's own column types), with `ON CONFLICT` arbitration and
`RETURNING` where asked: no model instances, no per-row parameters. Elsewhere (SQLite in a
fresh clone) it falls back to `bulk_create` with the same conflict handling.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.db.models import Model

BATCH = 5000


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} in a bulk row")


def _columns(model: type[Model], names: Sequence[str]) -> list[tuple[str, str]]:
    """(column, SQL type) of the model's fields named by attname (e.g. tenant_id)."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    out = []
    for name in names:
        field = by_attname[name]
        kind = "jsonb" if isinstance(field, models.JSONField) else field.db_type(connection)
        out.append((field.column, kind))
    return out


def write_rows(
    model: type[Model],
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    returning: str | None = None,
) -> list[Any] | None:
    """Insert `rows` (dicts keyed by attname). With `conflict` columns: DO UPDATE SET `update`, or
    DO NOTHING when `update` is empty. Returns the `returning` column of the rows written on
    PostgreSQL, None on the fallback path (the caller re-reads)."""
    if not rows:
        return [] if returning else None
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        if conflict and update:
            model._default_manager.bulk_create(
                objs, batch_size=1000, update_conflicts=True, unique_fields=list(conflict), update_fields=list(update)
            )
        else:
            model._default_manager.bulk_create(objs, batch_size=1000, ignore_conflicts=bool(conflict))
        return None
    names = list(rows[0])
    columns = _columns(model, names)
    table = model._meta.db_table
    cols = ", ".join(f'"{c}"' for c, _ in columns)
    sql = f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM jsonb_to_recordset(%s::jsonb) AS x('
    sql += ", ".join(f'"{c}" {t}' for c, t in columns) + ")"
    if conflict:
        target = ", ".join(f'"{c}"' for c, _ in _columns(model, conflict))
        if update:
            sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c, _ in _columns(model, update))
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    if returning:
        sql += f' RETURNING "{_columns(model, [returning])[0][0]}"'
    out: list[Any] = []
    with connection.cursor() as cursor:
        for i in range(0, len(rows), BATCH):
            payload = [{c: row[n] for n, (c, _) in zip(names, columns, strict=True)} for row in rows[i : i + BATCH]]
            cursor.execute(sql, [json.dumps(payload, default=_default, separators=(",", ":"))])
            if returning:
                out.extend(r[0] for r in cursor.fetchall())
    return out if returning else None
