"""Django email backend that files every message in the outbox (the embedded default, no EMAIL_URL)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

logger = logging.getLogger(__name__)


class OutboxEmailBackend(BaseEmailBackend):
    """Stores messages as `messaging.OutboxEmail` rows and returns how many were stored.

    Without fail_silently a batch is all or nothing: if one message can't be stored none is, and
    the error propagates, so a retrying caller (e.g. a Celery task) never duplicates half a batch.
    With fail_silently each message stands alone; failures are logged, never swallowed unseen.
    """

    def open(self) -> bool:
        self._tenants: dict = {}  # slug -> tenant, for this connection's batch
        return True

    def close(self) -> None:
        self._tenants = {}

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        from functools import partial

        from messaging.services import store_email

        store_email = partial(store_email, tenants=getattr(self, "_tenants", None))

        messages = [m for m in email_messages or [] if m.recipients()]
        if not messages:
            return 0
        if not self.fail_silently:
            with transaction.atomic():
                for message in messages:
                    store_email(message)
            return len(messages)
        stored = 0
        for message in messages:
            try:
                store_email(message)
            except Exception:
                logger.exception("outbox.store_failed", extra={"subject": str(message.subject)[:200]})
                continue
            stored += 1
        return stored
