"""Reads of messaging. Every query starts from `for_tenant(tenant)`; foreign and missing ids are NotFound."""

from __future__ import annotations

import datetime
import functools
from collections import Counter
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from accounts.models import Contact, CustomerAccount, Tenant
from messaging.errors import NotFound
from messaging.models import (
    Category,
    Channel,
    ContactPreference,
    DeclineQuiet,
    Message,
    MessageEvent,
    MessageState,
    MessageTemplate,
    MessagingSettings,
    TemplateState,
)


def get_settings(tenant: Tenant) -> MessagingSettings:
    """The tenant's settings; the defaults (unsaved) until a PM saves some."""
    found = MessagingSettings.objects.for_tenant(tenant).first()
    return found if found is not None else MessagingSettings(tenant=tenant)


def list_templates(tenant: Tenant, *, key: str | None = None, state: str | None = None) -> QuerySet[MessageTemplate]:
    qs = MessageTemplate.objects.for_tenant(tenant)
    if key is not None:
        qs = qs.filter(key=key)
    if state is not None:
        qs = qs.filter(state=state)
    return qs.order_by("key", "variant", "-version")


def live_templates(tenant: Tenant, *, key: str, channel: str) -> list[MessageTemplate]:
    """The live variants of `key` on `channel`, by variant name."""
    return list(
        MessageTemplate.objects.for_tenant(tenant)
        .filter(key=key, channel=channel, state=TemplateState.LIVE)
        .order_by("variant")
    )


def get_template_for_tenant(tenant: Tenant, template_id: int) -> MessageTemplate:
    found = MessageTemplate.objects.for_tenant(tenant).filter(pk=template_id).first()
    if found is None:
        raise NotFound("No such template.")
    return found


def list_messages(
    tenant: Tenant, *, account: CustomerAccount | None = None, contact: Contact | None = None, cause: str | None = None
) -> QuerySet[Message]:
    qs = Message.objects.for_tenant(tenant).select_related("contact", "account", "template")
    if account is not None:
        qs = qs.filter(account=account)
    if contact is not None:
        qs = qs.filter(contact=contact)
    if cause is not None:
        qs = qs.filter(cause=cause)
    return qs.order_by("-created_at", "-id")


def get_message_for_tenant(tenant: Tenant, message_id: int) -> Message:
    found = Message.objects.for_tenant(tenant).filter(pk=message_id).select_related("contact", "account").first()
    if found is None:
        raise NotFound("No such message.")
    return found


def get_prompt_for_tenant(tenant: Tenant, prompt_id: object) -> Message:
    """An in-app prompt by id; another tenant's id, an email's id and junk are all NotFound."""
    if isinstance(prompt_id, bool) or not str(prompt_id).isdigit() or len(str(prompt_id)) > 18:
        raise NotFound("No such prompt.")
    found = (
        Message.objects.for_tenant(tenant)
        .filter(pk=int(str(prompt_id)), channel=Channel.IN_APP)
        .select_related("contact", "account")
        .first()
    )
    if found is None:
        raise NotFound("No such prompt.")
    return found


def message_funnel(tenant: Tenant, *, cause_prefix: str = "", since: datetime.datetime | None = None) -> dict[str, int]:
    """Counts for the offer funnel: messages sent, and distinct messages opened, clicked, shown, dismissed.

    `cause_prefix` narrows to e.g. "offer:" (every offer) or "offer:42" (one offer).
    """
    messages = Message.objects.for_tenant(tenant)
    if cause_prefix:
        messages = messages.filter(cause__startswith=cause_prefix)
    if since is not None:
        messages = messages.filter(created_at__gte=since)
    funnel: Counter[str] = Counter()
    funnel["sent"] = messages.filter(state__in=[MessageState.SENT, MessageState.DISMISSED]).count()
    funnel["suppressed"] = messages.filter(state=MessageState.SUPPRESSED).count()
    events = MessageEvent.objects.for_tenant(tenant).filter(message__in=messages)
    for kind in ("opened", "clicked", "shown", "dismissed", "bounced", "complained", "unsubscribed"):
        funnel[kind] = events.filter(kind=kind).values("message").distinct().count()
    return dict(funnel)


def list_message_events(tenant: Tenant, *, message: Message) -> QuerySet[MessageEvent]:
    return MessageEvent.objects.for_tenant(tenant).filter(message=message).order_by("created_at", "id")


# --- Due in-app prompts: the hot read of GET /api/v1/accounts/{external_id}/prompts ----------------


@dataclass(frozen=True)
class DuePromptsRead:
    """The account (and the asked-for contact) and the prompts due for it, read in one statement.

    `account_id` None: no such account in this tenant. `contact_found` False: a contact email was
    asked for and the account has no such contact. `prompts` are full Message rows with `contact` set.
    """

    account_id: int | None
    external_id: str
    contact_found: bool
    prompts: list[Message]


def read_due_prompts(
    tenant: Tenant,
    *,
    now: datetime.datetime,
    external_id: str | None = None,
    account_id: int | None = None,
    contact_email: str | None = None,
    contact_id: int | None = None,
    placement: str | None = None,
) -> DuePromptsRead:
    """The prompts due now for one account (by external id or id), oldest first, at most 50.

    One statement, so the API answers in two queries with the API key's: the account, the contact named
    by email (case-insensitive, the lowest id, as `.filter(email__iexact=...).first()` picks) and the
    due prompts with their contacts. Due: in-app, queued or sent, `due_at` passed, in `placement` when
    given; an upgrade prompt is left out while its contact is unsubscribed or has in-app off, or its
    account is in a decline's quiet period. Written in SQL because building the same query with the ORM
    took 1–2 ms of CPU a request, a third of the endpoint's budget (issue 16); it is built once per shape
    and runs on PostgreSQL and SQLite alike. Every table is filtered by tenant explicitly; row-level
    security stands behind it as everywhere.
    """
    if (external_id is None) == (account_id is None):
        raise ValueError("read_due_prompts needs one of external_id or account_id")
    params: dict[str, object] = {
        "tenant": tenant.pk,
        "account": external_id if account_id is None else account_id,
        "now": connection.ops.adapt_datetimefield_value(now),
        "in_app": Channel.IN_APP.value,
        "queued": MessageState.QUEUED.value,
        "sent": MessageState.SENT.value,
        "upgrade": Category.UPGRADE.value,
        "email": contact_email,
        "contact": contact_id,
        "placement": placement,
    }
    sql = _due_prompts_sql(
        by_external_id=account_id is None,
        by_email=contact_email is not None,
        by_contact_id=contact_id is not None,
        by_placement=bool(placement),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return DuePromptsRead(account_id=None, external_id=external_id or "", contact_found=False, prompts=[])
    message_columns, contact_columns = _columns()
    n = len(message_columns)
    prompts = []
    for row in rows:
        if row[3] is None or row[3 + n] is None:  # the account's row with no prompt joined
            continue
        prompt = _from_row(Message, message_columns, row[3 : 3 + n])
        prompt.contact = _from_row(Contact, contact_columns, row[3 + n :])
        prompts.append(prompt)
    return DuePromptsRead(
        account_id=rows[0][0],
        external_id=rows[0][1],
        contact_found=contact_email is None or rows[0][2] is not None,
        prompts=prompts,
    )


@functools.cache
def _columns() -> tuple[tuple, tuple]:
    """(field, column expression, its converters) of Message and of Contact, in `concrete_fields` order."""

    def described(model: type) -> tuple:
        out = []
        for field in model._meta.concrete_fields:  # type: ignore[attr-defined]
            col = field.get_col(model._meta.db_table)  # type: ignore[attr-defined]
            out.append((col, tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))))
        return tuple(out)

    return described(Message), described(Contact)


def _from_row(model: type, columns: tuple, values: tuple):  # -> the instance, as the ORM would load it
    converted = []
    for (col, converters), value in zip(columns, values, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, None, converted)  # type: ignore[attr-defined]


@functools.cache
def _due_prompts_sql(*, by_external_id: bool, by_email: bool, by_contact_id: bool, by_placement: bool) -> str:
    message_columns, contact_columns = _columns()
    message, contact = Message._meta.db_table, Contact._meta.db_table
    account = CustomerAccount._meta.db_table
    preference, quiet = ContactPreference._meta.db_table, DeclineQuiet._meta.db_table
    columns = ", ".join(
        [f'm."{col.target.column}"' for col, _ in message_columns]
        + [f'c."{col.target.column}"' for col, _ in contact_columns]
    )
    contact_by_email = (  # only table names are inlined; every value is a bound parameter
        f'(SELECT c0."id" FROM "{contact}" c0 WHERE c0."tenant_id" = a."tenant_id" AND c0."account_id" = a."id"'  # noqa: S608
        ' AND UPPER(c0."email") = UPPER(%(email)s) ORDER BY c0."id" LIMIT 1)'
    )
    narrow = ""
    if by_placement:
        narrow += ' AND m."placement" = %(placement)s'
    if by_contact_id:
        narrow += ' AND m."contact_id" = %(contact)s'
    if by_email:
        narrow += f' AND m."contact_id" = {contact_by_email}'
    return f"""
        SELECT a."id", a."external_id", {contact_by_email if by_email else "NULL"}, {columns}
        FROM "{account}" a
        LEFT JOIN "{message}" m ON m."tenant_id" = a."tenant_id" AND m."account_id" = a."id"
            AND m."channel" = %(in_app)s AND m."state" IN (%(queued)s, %(sent)s) AND m."due_at" <= %(now)s{narrow}
            AND NOT (m."category" = %(upgrade)s AND (
                EXISTS (SELECT 1 FROM "{preference}" p WHERE p."tenant_id" = m."tenant_id"
                        AND p."contact_id" = m."contact_id" AND NOT (p."in_app" AND p."unsubscribed_at" IS NULL))
                OR EXISTS (SELECT 1 FROM "{quiet}" q WHERE q."tenant_id" = m."tenant_id"
                           AND q."account_id" = m."account_id" AND q."quiet_until" > %(now)s)))
        LEFT JOIN "{contact}" c ON c."id" = m."contact_id" AND c."tenant_id" = a."tenant_id"
        WHERE a."tenant_id" = %(tenant)s AND a."{"external_id" if by_external_id else "id"}" = %(account)s
        ORDER BY m."created_at", m."id"
        LIMIT 50
    """  # noqa: S608 (only table and column names are inlined; every value is a bound parameter)
