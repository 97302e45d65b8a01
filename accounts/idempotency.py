"""`Idempotency-Key` on API writes, as Stripe does it.

- The first request under a key claims it and runs; its answer (status, body bytes, content
  type) is stored and replayed byte-identical for 24 hours, with `Idempotent-Replayed: true`.
- The same key with a different request (method, path or JSON body) answers 422.
- The same key while the first request still runs answers 409; retry later.
- A 5xx answer (or an exception) is not stored: the claim is released so a retry runs again.
- Keys are scoped per tenant and API key.

Invariant: the claim is ONE arbitrated write, INSERT ... ON CONFLICT DO NOTHING on the
unique (tenant, api_key, key) constraint, followed by a read of the row that won. Never
"select, then insert": two concurrent retries would both pass the select. Taking over an
expired record or an abandoned claim is a compare-and-swap on the row's `token`.

Hazard: the claim must be committed before the request's work starts, or a concurrent
request can't see it in flight; so claim(), complete() and release() each run in their own
short transaction and must not be called inside the request's own transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone

from accounts.errors import Conflict, InvalidInput, TierwiseError
from accounts.models import ApiKey, IdempotencyRecord, Tenant

HEADER = "Idempotency-Key"
META_KEY = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
RETENTION = datetime.timedelta(hours=24)
# A claim this old whose request never finished (a killed process) may be taken over.
ABANDONED_AFTER = datetime.timedelta(minutes=5)
METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class IdempotencyKeyReused(TierwiseError):
    status_code = 422
    default_code = "idempotency_key_reused"


class IdempotencyKeyInFlight(Conflict):
    default_code = "idempotency_key_in_use"


def parse_key(value: str | None) -> str | None:
    """The header's key, or None when absent. 400 unless 1..255 printable ASCII characters."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in value):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            code="invalid_idempotency_key",
            details={HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    return value


def fingerprint(*, method: str, path: str, body: bytes) -> str:
    """What "the same request" means: method, path with query, and the body.

    A JSON body is compared by value (key order and whitespace don't matter), anything else
    byte for byte.
    """
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode("utf-8", "surrogateescape"), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass
class Claim:
    """This request holds the key: it must end with complete() or release()."""

    record_id: int
    token: str


@dataclass
class Replay:
    """The key already has a stored answer for this same request."""

    status_code: int
    content_type: str
    body: bytes

    def response(self) -> HttpResponse:
        response = HttpResponse(self.body, status=self.status_code, content_type=self.content_type or None)
        response[REPLAYED_HEADER] = "true"
        return response


def claim(
    tenant: Tenant,
    *,
    api_key: ApiKey,
    key: str,
    method: str,
    path: str,
    body: bytes,
    now: datetime.datetime | None = None,
) -> Claim | Replay:
    """Claim `key` for this request, or answer what an earlier request under it answered.

    Raises IdempotencyKeyReused (422) for a different request under the key and
    IdempotencyKeyInFlight (409) while the first one still runs.
    """
    now = now or timezone.now()
    print_ = fingerprint(method=method, path=path, body=body)
    token = uuid.uuid4().hex
    scope = IdempotencyRecord.objects.for_tenant(tenant).filter(api_key=api_key)
    for _attempt in range(3):
        with transaction.atomic():
            IdempotencyRecord.objects.bulk_create(
                [
                    IdempotencyRecord(
                        tenant=tenant,
                        api_key=api_key,
                        key=key,
                        token=token,
                        fingerprint=print_,
                        method=method,
                        path=path[:2048],
                        created_at=now,
                    )
                ],
                ignore_conflicts=True,  # INSERT ... ON CONFLICT DO NOTHING: the constraint arbitrates
            )
            record = scope.filter(key=key).first()
        if record is None:  # expired and dropped by another request between our two statements
            continue
        if record.token == token:
            _drop_expired(tenant, now=now)
            return Claim(record_id=record.pk, token=token)
        if record.created_at <= now - RETENTION:
            # Expired: the key is free again. Delete only that exact row (compare-and-swap on its token).
            scope.filter(pk=record.pk, token=record.token).delete()
            continue
        if record.fingerprint != print_:
            raise IdempotencyKeyReused(
                f"This {HEADER} was already used with a different request ({record.method} {record.path}); "
                "use a new key for a new request.",
                details={HEADER: key},
            )
        if record.status_code is not None:
            return Replay(
                status_code=record.status_code, content_type=record.content_type, body=bytes(record.body or b"")
            )
        if record.created_at <= now - ABANDONED_AFTER:
            # Its request died without an answer: take the claim over, once, by compare-and-swap.
            taken = scope.filter(pk=record.pk, token=record.token, status_code__isnull=True).update(
                token=token, created_at=now
            )
            if taken:
                return Claim(record_id=record.pk, token=token)
            continue
        raise IdempotencyKeyInFlight(
            f"A request with this {HEADER} is still being processed; retry after it has finished.",
            details={HEADER: key},
        )
    raise IdempotencyKeyInFlight(f"This {HEADER} is contended; retry.", details={HEADER: key})


def complete(tenant: Tenant, claim_: Claim, *, status_code: int, content_type: str, body: bytes) -> None:
    """Store the answer to replay. Only the holder's token can write it."""
    with transaction.atomic():
        IdempotencyRecord.objects.for_tenant(tenant).filter(pk=claim_.record_id, token=claim_.token).update(
            status_code=status_code, content_type=content_type, body=body, completed_at=timezone.now()
        )


def release(tenant: Tenant, claim_: Claim) -> None:
    """Forget the claim (a 5xx or an exception): the client's retry runs the request again."""
    with transaction.atomic():
        IdempotencyRecord.objects.for_tenant(tenant).filter(pk=claim_.record_id, token=claim_.token).delete()


def _drop_expired(tenant: Tenant, *, now: datetime.datetime) -> None:
    """Lazy expiry: each new claim drops its tenant's records past the retention window (every API key's,
    revoked ones too), so the table holds about a day of keys per active tenant."""
    with transaction.atomic():
        IdempotencyRecord.objects.for_tenant(tenant).filter(created_at__lte=now - RETENTION).delete()
