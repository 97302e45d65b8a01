"""Writes of the usage app: event ingest, rollups, feature-gate hits, rollup rebuilds.

The ingest hot path validates a parsed batch in one tight loop (no per-event serializer),
then writes set-based in one transaction:
  1. one multi-row `INSERT INTO usage_ingestkey ... ON CONFLICT DO NOTHING RETURNING key`
     decides which events are new (the arbiter: two racing identical batches count once,
     the second one waits on the unique key and then sees the first's rows);
  2. the new events go in with one `INSERT ... SELECT FROM jsonb_to_recordset(...)` (PostgreSQL: COPY is
     refused under row-level security) or one `executemany` (SQLite);
  3. rollups per account x meter x day are upserted with one statement per kind.
Invalid events are answered with reasons and never written. Cache invalidation for the
touched accounts runs on commit.

Modules, by sub-domain (a package since the module passed ~400 lines, STYLE.md):
- `ingest`: batch limits, per-event validation, the per-event answers (`ingest_events`)
- `writes`: ingest keys, the bulk insert of new events, rollup upserts (`write_events`)
- `accounts`: resolving external ids, auto-creating (and auditing) unknown accounts
- `gate_hits`: feature-gate hits stored as events
- `rebuild`: recomputing rollups from raw events
Only the names other modules use are re-exported here; the rest live in their module.
"""

from __future__ import annotations

from usage.services.gate_hits import record_feature_gate_hit
from usage.services.ingest import MAX_BATCH_BYTES, ingest_events
from usage.services.rebuild import rebuild_rollups
from usage.services.writes import meters_by_event, write_events

__all__ = [
    "MAX_BATCH_BYTES",
    "ingest_events",
    "meters_by_event",
    "rebuild_rollups",
    "record_feature_gate_hit",
    "write_events",
]
