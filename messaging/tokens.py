"""Signed tokens in links of emails (unsubscribe, preferences, open pixel, click redirect).

Each purpose has its own salt, so a token for one can't be replayed as another. The payload carries
the tenant id: it is signed, so a page reached without a sign-in may trust it to pick the tenant
(row-level security: `activate_tenant`) before reading anything.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core import signing

UNSUBSCRIBE = "messaging.unsubscribe"
OPEN = "messaging.open"
CLICK = "messaging.click"
# An unsubscribe link must keep working long after the email (RFC 8058 receivers may act much later).
MAX_AGE = {UNSUBSCRIBE: datetime.timedelta(days=800), OPEN: datetime.timedelta(days=400),
           CLICK: datetime.timedelta(days=400)}  # fmt: skip


class BadToken(Exception):
    pass


@dataclass(frozen=True)
class Payload:
    tenant_id: int
    object_id: int  # the contact (unsubscribe) or the message (open, click)
    index: int | None = None  # the link (click)


def make(purpose: str, *, tenant_id: int, object_id: int, index: int | None = None) -> str:
    value = [tenant_id, object_id] if index is None else [tenant_id, object_id, index]
    return signing.TimestampSigner(salt=purpose).sign_object(value, compress=False)


def read(purpose: str, token: str) -> Payload:
    try:
        value = signing.TimestampSigner(salt=purpose).unsign_object(token, max_age=MAX_AGE[purpose])
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadToken(str(exc)) from exc
    if (
        not isinstance(value, list)
        or len(value) not in (2, 3)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise BadToken("malformed")
    return Payload(tenant_id=value[0], object_id=value[1], index=value[2] if len(value) == 3 else None)
