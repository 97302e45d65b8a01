"""messaging models: the outbox, templates and settings, messages and their events, contact preferences."""

from messaging.models.messages import (
    Category,
    Channel,
    ContactPreference,
    DeclineQuiet,
    EmailSuppression,
    Message,
    MessageEvent,
    MessageEventKind,
    MessageState,
    SuppressedReason,
)
from messaging.models.outbox import OutboxEmail
from messaging.models.templates import MessageTemplate, MessagingSettings, Purpose, TemplateState

__all__ = [
    "Category",
    "Channel",
    "ContactPreference",
    "DeclineQuiet",
    "EmailSuppression",
    "Message",
    "MessageEvent",
    "MessageEventKind",
    "MessageState",
    "MessageTemplate",
    "MessagingSettings",
    "OutboxEmail",
    "Purpose",
    "SuppressedReason",
    "TemplateState",
]
