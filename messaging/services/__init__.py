"""messaging's writes. The public entry points are re-exported here (see messaging/__init__.py)."""

from messaging.services.delivery import deliver_message, deliver_messages, release_due_messages
from messaging.services.outbox import TENANT_HEADER, store_email
from messaging.services.preferences import record_bounce, unsubscribe, update_preferences
from messaging.services.prompts import due_prompts, due_prompts_by_external_id, record_prompt_event
from messaging.services.sending import note_decline, record_outreach, send_message, send_messages

__all__ = [
    "TENANT_HEADER",
    "deliver_message",
    "deliver_messages",
    "due_prompts",
    "due_prompts_by_external_id",
    "note_decline",
    "record_bounce",
    "record_outreach",
    "record_prompt_event",
    "release_due_messages",
    "send_message",
    "send_messages",
    "store_email",
    "unsubscribe",
    "update_preferences",
]
