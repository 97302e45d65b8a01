"""Meter values: one bound for what a meter adds up, shared by ingest, the incremental rollups and the rebuild.

Ingest rejects a meter property outside +-MAX_METER_VALUE. Events stored before a meter
read them (or written by the demo seed and gate hits, which skip validation) can carry
any JSON number; both rollup paths clamp each value to the same bound and saturate a
day's total at bigint, so a rebuild gives the incremental path's numbers and never
fails on an odd stored value.
"""

from __future__ import annotations

# Integers a meter adds up; well inside bigint, so 1,000 of them in one batch can't overflow.
MAX_METER_VALUE = 10**15
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1


def clamp_meter_value(value: int) -> int:
    """One event's contribution to a meter (the Python face of `clamped_value_sql`)."""
    return max(-MAX_METER_VALUE, min(MAX_METER_VALUE, value))


def clamp_bigint(value: int) -> int:
    """A rollup total as stored: saturated at bigint, never an overflow error."""
    return max(BIGINT_MIN, min(BIGINT_MAX, value))


def clamped_value_sql(vendor: str, path_param: str = "%s") -> str:
    """SQL for one event's meter property as an integer clamped like `clamp_meter_value`.

    PostgreSQL keeps it `numeric` (sum it, then `saturated_bigint_sql`); SQLite an INTEGER.
    """
    bound = MAX_METER_VALUE
    if vendor == "postgresql":
        return f"LEAST(GREATEST(trunc((properties ->> {path_param})::numeric), -{bound}), {bound})"
    return f"CAST(MIN(MAX(json_extract(properties, {path_param}), -{bound}), {bound}) AS INTEGER)"


def saturated_bigint_sql(vendor: str, expression: str) -> str:
    """SQL that stores `expression` as bigint, saturated like `clamp_bigint` (SQLite integers are 64-bit already)."""
    if vendor == "postgresql":
        return f"LEAST(GREATEST({expression}, {BIGINT_MIN}), {BIGINT_MAX})::bigint"
    return expression
