"""Buckets and arms, pure (no Django): the same answer in every process, run and machine.

bucket = first 8 bytes of sha256("tenant:experiment:account") mod 10,000. Buckets below
control_percent * 100 are the control group; the rest are split across the variants by weight.
"""

from __future__ import annotations

import hashlib
from typing import Any

BUCKETS = 10_000
CONTROL = "control"


def bucket_of(tenant_id: int, experiment_id: int, account_id: int) -> int:
    digest = hashlib.sha256(f"{tenant_id}:{experiment_id}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_for_bucket(experiment: Any, bucket: int) -> str:
    """`experiment` has control_percent and variants ([{"key", "weight"}])."""
    control_buckets = experiment.control_percent * BUCKETS // 100
    if bucket < control_buckets:
        return CONTROL
    variants = [v for v in experiment.variants if int(v.get("weight", 1)) > 0]
    total = sum(int(v.get("weight", 1)) for v in variants)
    position = (bucket - control_buckets) * total // (BUCKETS - control_buckets)  # onto [0, total) by weight
    for variant in variants:
        position -= int(variant.get("weight", 1))
        if position < 0:
            return str(variant["key"])
    return str(variants[-1]["key"])
