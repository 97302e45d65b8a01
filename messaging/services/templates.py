"""Writing message templates and moving them through draft -> awaiting approval -> live -> retired.

The catalog's four-eyes pattern (catalog/services/governance.py, upgrades/rules/services/governance.py):
whoever wrote or submitted a version may not approve it; owners may approve anything. Approval makes
the version live and retires the version of the same key and variant it replaces. Writing needs the
'edit rules, templates and experiments' capability. Every write validates the template (syntax,
variables of its purpose, the sandbox) and is audited.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Capability, Contact, Membership, Role, Tenant, User
from accounts.services import record_audit, snapshot
from messaging import rendering
from messaging.errors import Conflict, InvalidInput, MessagingErrorCode, PermissionDenied
from messaging.models import MessageTemplate, TemplateState
from messaging.models.templates import CONTENT_FIELDS, TemplateChannel

CONTENT = CONTENT_FIELDS
EDITABLE = ("key", "variant", *CONTENT)
GOVERNANCE = ("state", "submitted_by_id", "submitted_at", "approved_by_id", "approved_at", "live_at", "retired_at")


def template_parts(template: MessageTemplate) -> list[rendering.Part]:
    if template.channel == TemplateChannel.EMAIL:
        return [
            rendering.Part("subject", template.subject, html=False),
            rendering.Part("html_body", template.html_body, html=True),
            rendering.Part("text_body", template.text_body, html=False),
        ]
    return [
        rendering.Part("title", template.title, html=False),
        rendering.Part("body", template.body, html=False),
        rendering.Part("cta_label", template.cta_label, html=False),
        rendering.Part("cta_url", template.cta_url, html=False),
    ]


def sample_full_context(template: MessageTemplate, *, contact: Contact | None = None) -> dict[str, Any]:
    from messaging.services.context import base_context

    ctx = rendering.sample_context(template.purpose)
    ctx.update(base_context(template.tenant, contact=contact, sample=contact is None))
    return ctx


def validate_template(template: MessageTemplate) -> None:
    """ValidationError naming each field's problem: what its channel needs, syntax, variables, the sandbox."""
    errors: dict[str, list[str]] = {}
    required = ("subject", "html_body") if template.channel == TemplateChannel.EMAIL else ("title", "body", "placement")
    for name in required:
        if not (getattr(template, name) or "").strip():
            errors[name] = ["Required for this channel."]
    if template.purpose not in rendering.VARIABLES:
        errors["purpose"] = [f"Unknown purpose {template.purpose!r}."]
    if errors:
        raise ValidationError(errors)
    context = sample_full_context(template)
    rendering.validate_parts(template_parts(template), purpose=template.purpose, context=context)
    if template.channel == TemplateChannel.IN_APP and template.cta_url:
        url = rendering.render(template.cta_url, context, html=False)
        if not url.startswith("https://"):
            raise ValidationError({"cta_url": [f"Must be an https:// URL; with the sample values it is {url!r}."]})


def _membership(tenant: Tenant, actor: User) -> Membership | None:
    return Membership.objects.for_tenant(tenant).filter(user=actor).first() if isinstance(actor, User) else None


def _require(tenant: Tenant, actor: User, doing: str) -> Membership | None:
    if isinstance(actor, User) and actor.is_superuser:
        return _membership(tenant, actor)
    membership = _membership(tenant, actor)
    if membership is None or not membership.can(Capability.EDIT_RULES):
        raise PermissionDenied(
            f"You may not {doing}: that needs the '{Capability.EDIT_RULES.label}' permission.",
            code=MessagingErrorCode.NO_CAPABILITY,
        )
    return membership


def _clean(template: MessageTemplate) -> None:
    try:
        template.full_clean(exclude=["tenant"], validate_unique=False, validate_constraints=False)
        validate_template(template)
    except ValidationError as exc:
        errors = exc.message_dict
        field, messages = next(iter(errors.items()))
        raise InvalidInput(f"{field}: {messages[0]}", code=MessagingErrorCode.INVALID_TEMPLATE, details=errors) from exc


def _lock(template: MessageTemplate) -> MessageTemplate:
    return MessageTemplate.objects.select_for_update().get(pk=template.pk, tenant_id=template.tenant_id)


def _require_state(template: MessageTemplate, *states: str, doing: str) -> None:
    if template.state not in states:
        wanted = " or ".join(TemplateState(s).label.lower() for s in states)
        raise Conflict(
            f"Cannot {doing} {template.name}: it is {template.get_state_display().lower()}, not {wanted}.",
            code=MessagingErrorCode.WRONG_STATE,
            details={"state": template.state},
        )


@transaction.atomic
def create_template(tenant: Tenant, *, actor: User, **fields: Any) -> MessageTemplate:
    _require(tenant, actor, "write message templates")
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", code=MessagingErrorCode.INVALID_TEMPLATE)
    template = MessageTemplate(tenant=tenant, created_by=actor if isinstance(actor, User) else None, **fields)
    template.contributor_ids = [actor.pk] if isinstance(actor, User) else []
    same = MessageTemplate.objects.for_tenant(tenant).filter(key=template.key, variant=template.variant)
    template.version = (same.aggregate(v=Max("version"))["v"] or 0) + 1
    _clean(template)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError as exc:
        raise Conflict("Another version of this template was just created; try again.") from exc
    record_audit(
        tenant, actor=actor, action="messagetemplate.created", obj=template, after=snapshot(template, EDITABLE)
    )
    return template


@transaction.atomic
def update_template(tenant: Tenant, *, template: MessageTemplate, actor: User, **fields: Any) -> MessageTemplate:
    _require(tenant, actor, "edit message templates")
    template = _lock(template)
    if template.state != TemplateState.DRAFT:
        raise Conflict(
            f"{template.name} is {template.get_state_display().lower()}; only drafts can be edited "
            "(start a new version to change it).",
            code=MessagingErrorCode.NOT_DRAFT,
        )
    before = snapshot(template, EDITABLE)
    for name, value in fields.items():
        if name not in CONTENT:
            raise InvalidInput(f"{name} cannot be changed.", code=MessagingErrorCode.INVALID_TEMPLATE)
        setattr(template, name, value)
    _clean(template)
    if isinstance(actor, User) and actor.pk not in template.contributor_ids:
        template.contributor_ids = [*template.contributor_ids, actor.pk]
    template.save()
    record_audit(tenant, actor=actor, action="messagetemplate.updated", obj=template, before=before,
                 after=snapshot(template, EDITABLE))  # fmt: skip
    return template


def new_version(tenant: Tenant, *, template: MessageTemplate, actor: User) -> MessageTemplate:
    """A draft copy of a live or retired version, to edit and approve in its place."""
    fields = {name: getattr(template, name) for name in EDITABLE}
    return create_template(tenant, actor=actor, **fields)


def _transition(
    tenant: Tenant, template: MessageTemplate, actor: User, verb: str, before: dict, reason: str = ""
) -> None:
    after = snapshot(template, GOVERNANCE)
    if reason:
        after["reason"] = reason
    record_audit(tenant, actor=actor, action=f"messagetemplate.{verb}", obj=template, before=before, after=after)


@transaction.atomic
def submit_template(tenant: Tenant, *, template: MessageTemplate, actor: User) -> MessageTemplate:
    _require(tenant, actor, "submit message templates")
    template = _lock(template)
    _require_state(template, TemplateState.DRAFT, doing="submit")
    _clean(template)
    before = snapshot(template, GOVERNANCE)
    template.state, template.submitted_by, template.submitted_at = (
        TemplateState.AWAITING_APPROVAL,
        actor,
        timezone.now(),
    )
    template.save()
    _transition(tenant, template, actor, "submitted", before)
    return template


def four_eyes_refusal(template: MessageTemplate, actor: User, membership: Membership | None) -> str | None:
    """Why `actor` may not approve `template`, or None (owners and superusers may approve anything)."""
    if actor.is_superuser or (membership is not None and membership.role == Role.OWNER):
        return None
    if actor.pk == template.created_by_id or actor.pk in (template.contributor_ids or []):
        return f"You wrote {template.name}, so someone else must approve it: four eyes on every template."
    if actor.pk == template.submitted_by_id:
        return f"You submitted {template.name}, so someone else must approve it."
    return None


@transaction.atomic
def approve_template(tenant: Tenant, *, template: MessageTemplate, actor: User) -> MessageTemplate:
    """A second person's approval makes the version live; the live version it replaces retires."""
    membership = _require(tenant, actor, "approve message templates")
    template = _lock(template)
    _require_state(template, TemplateState.AWAITING_APPROVAL, doing="approve")
    refusal = four_eyes_refusal(template, actor, membership)
    if refusal:
        raise PermissionDenied(refusal, code=MessagingErrorCode.FOUR_EYES)
    _clean(template)
    now = timezone.now()
    for old in (
        MessageTemplate.objects.for_tenant(tenant)
        .select_for_update()
        .filter(key=template.key, variant=template.variant, state=TemplateState.LIVE)
    ):
        old_before = snapshot(old, GOVERNANCE)
        old.state, old.retired_at = TemplateState.RETIRED, now
        old.save()
        _transition(tenant, old, actor, "retired", old_before, reason=f"replaced by version {template.version}")
    before = snapshot(template, GOVERNANCE)
    template.state, template.approved_by, template.approved_at, template.live_at = TemplateState.LIVE, actor, now, now
    template.save()
    _transition(tenant, template, actor, "approved", before)
    return template


@transaction.atomic
def return_template_to_draft(
    tenant: Tenant, *, template: MessageTemplate, actor: User, reason: str = ""
) -> MessageTemplate:
    _require(tenant, actor, "send message templates back to draft")
    template = _lock(template)
    _require_state(template, TemplateState.AWAITING_APPROVAL, doing="return to draft")
    before = snapshot(template, GOVERNANCE)
    template.state = TemplateState.DRAFT
    template.submitted_by = template.submitted_at = template.approved_by = template.approved_at = None
    template.save()
    _transition(tenant, template, actor, "returned_to_draft", before, reason=reason)
    return template


@transaction.atomic
def retire_template(tenant: Tenant, *, template: MessageTemplate, actor: User, reason: str = "") -> MessageTemplate:
    _require(tenant, actor, "retire message templates")
    template = _lock(template)
    _require_state(template, TemplateState.LIVE, doing="retire")
    before = snapshot(template, GOVERNANCE)
    template.state, template.retired_at = TemplateState.RETIRED, timezone.now()
    template.save()
    _transition(tenant, template, actor, "retired", before, reason=reason)
    return template


TRANSITIONS = {
    "submit": submit_template,
    "approve": approve_template,
    "return_to_draft": return_template_to_draft,
    "retire": retire_template,
}
