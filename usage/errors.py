"""Error codes of the usage app (batch-level; per-event reasons travel in the ingest answer)."""

from __future__ import annotations

from enum import StrEnum

from accounts.errors import InvalidInput, NotFound, TierwiseError

__all__ = ["InvalidInput", "NotFound", "PayloadTooLarge", "UsageErrorCode"]


class UsageErrorCode(StrEnum):
    MALFORMED_JSON = "malformed_json"
    INVALID_BATCH = "invalid_batch"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNKNOWN_FEATURE = "unknown_feature"
    UNKNOWN_ACCOUNT = "unknown_account"
    INVALID_CHECK = "invalid_check"


class PayloadTooLarge(TierwiseError):
    status_code = 413
    default_code = UsageErrorCode.PAYLOAD_TOO_LARGE
