"""messaging in the admin: the outbox, templates (preview, governance), messages (read-only), settings."""

from messaging.admin import messages, outbox, settings, templates  # noqa: F401
