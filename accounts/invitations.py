"""Writes for staff invitations: a membership starts pending and the invited person accepts it.

- The token is bound to one membership, random (256 bits), stored as its SHA-256 only, valid for
  INVITATION_TTL, and cleared when used (single use). Re-inviting rotates it: the old link stops working.
- Nobody is enrolled without accepting: an existing user added to another tenant gets an invitation too.
  Until accepted a membership grants nothing (`Membership.objects` does not even see it).
- The email is sent by a task keyed in the membership row (see deliver_invitation): a redelivered task
  never sends it twice.
- The email is marked sensitive: the outbox hides its link from staff who may not manage a member of
  that role (messaging.admin).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.errors import InvalidInput, PermissionDenied
from accounts.models import INVITATION_TTL, Capability, Membership, Role, Tenant, User
from accounts.services import Actor, record_audit, snapshot
from accounts.tenancy import lookup_tenant_ids, tenant_context

# Headers the outbox reads (messaging.services / messaging.admin): the mail carries a secret link, and
# who may read it (members who may manage staff and rank at least this role).
SENSITIVE_HEADER = "X-Tierwise-Sensitive"
SENSITIVE_ROLE_HEADER = "X-Tierwise-Sensitive-Role"
TENANT_HEADER = "X-Tierwise-Tenant"

TOKEN_BYTES = 32


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _actor_user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def _check_actor_may_invite(tenant: Tenant, actor: Actor, role: str) -> None:
    """A person inviting (or re-roling) someone must manage staff and rank at least the role given."""
    user = _actor_user(actor)
    if user is None or user.is_superuser:
        return  # system processes (seeds, commands) and platform operators
    membership = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if membership is None or not membership.can(Capability.MANAGE_TENANT) or not membership.outranks_or_equals(role):
        raise PermissionDenied("You may not invite or change a member with this role.")


def _rotate(membership: Membership, now) -> None:
    """A fresh token: the stored hash changes, so any earlier link stops working. Delivery starts over."""
    membership.invitation_token_hash = ""  # the token itself is made when the email is sent
    membership.invitation_expires_at = now + INVITATION_TTL
    membership.invitation_send_started_at = None
    membership.invitation_sent_at = None
    membership.invited_at = now


def _enqueue_send(membership: Membership) -> None:
    from accounts.tasks import send_invitation

    tenant_id, membership_id = membership.tenant_id, membership.pk
    transaction.on_commit(lambda: send_invitation.delay(tenant_id, membership_id))


@transaction.atomic
def add_member(tenant: Tenant, *, email: str, role: str, actor: Actor) -> Membership:
    """Invites a person (new to Tierwise or not) to the tenant, or changes an existing member's role.

    A pending invitation for the same person is re-sent with a new token (and the role given).
    """
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [f"Unknown role {role!r}."]
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid email address."]
    if errors:
        raise InvalidInput("Invalid input.", details=errors)
    _check_actor_may_invite(tenant, actor, role)
    now = timezone.now()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, None)  # no usable password until they accept
    membership = Membership.all_objects.select_for_update().filter(tenant=tenant, user=user).first()
    if membership is not None and membership.is_accepted:
        if membership.role != role:
            _check_actor_may_invite(tenant, actor, membership.role)  # nor demote someone above you
            before = snapshot(membership, ["role"])
            membership.role = role
            membership.save(update_fields=["role"])
            record_audit(
                tenant,
                actor=actor,
                action="membership.changed",
                obj=membership,
                before=before,
                after=snapshot(membership, ["role"]),
            )
        return membership
    if membership is None:
        membership = Membership(tenant=tenant, user=user, role=role, accepted_at=None)
        action = "membership.invited"
    else:
        membership.role = role
        action = "membership.reinvited"
    membership.invited_by = _actor_user(actor)
    _rotate(membership, now)
    membership.save()
    record_audit(
        tenant,
        actor=actor,
        action=action,
        obj=membership,
        after={"email": user.email, "role": role, "expires_at": membership.invitation_expires_at},
    )
    _enqueue_send(membership)
    return membership


@transaction.atomic
def resend_invitation(tenant: Tenant, *, membership: Membership, actor: Actor) -> Membership:
    """A new token and a new email for a pending invitation (e.g. expired, lost, or delivery uncertain)."""
    membership = Membership.all_objects.for_tenant(tenant).select_for_update().get(pk=membership.pk)
    if membership.is_accepted:
        raise InvalidInput("This invitation was accepted already.")
    _check_actor_may_invite(tenant, actor, membership.role)
    _rotate(membership, timezone.now())
    membership.save()
    record_audit(
        tenant,
        actor=actor,
        action="membership.reinvited",
        obj=membership,
        after={"email": membership.user.email, "role": membership.role, "expires_at": membership.invitation_expires_at},
    )
    _enqueue_send(membership)
    return membership


@transaction.atomic
def revoke_invitation(tenant: Tenant, *, membership: Membership, actor: Actor) -> None:
    """Withdraws a pending invitation: the membership goes, its link stops working."""
    membership = (
        Membership.all_objects.for_tenant(tenant).select_for_update().select_related("user").get(pk=membership.pk)
    )
    if membership.is_accepted:
        raise InvalidInput("This invitation was accepted already; remove the member instead.")
    _check_actor_may_invite(tenant, actor, membership.role)
    record_audit(
        tenant,
        actor=actor,
        action="membership.invitation_revoked",
        obj=membership,
        before={"email": membership.user.email, "role": membership.role},
    )
    membership.delete()


# --- Delivery (the task) ----------------------------------------------------------------


def deliver_invitation(tenant: Tenant, *, membership_id: int) -> bool:
    """Sends the invitation email at most once per token. Returns whether this call sent it.

    1. Under a row lock: skip if accepted, expired, already sent, or a send already started; else make
       the token, store its hash and mark the send started. Commit.
    2. Send the email (the raw token lives only in this process and the email).
    3. Mark it sent.
    A worker killed after 1 leaves "started, not sent": a redelivered task sees it and does not send
    again (the email may have left); staff see "delivery uncertain" in the admin and can resend, which
    rotates the token. An error raised by the mail backend in 2 means it did not leave: the mark is
    undone so the task's retry sends it.
    """
    now = timezone.now()
    with transaction.atomic():
        membership = (
            Membership.all_objects.for_tenant(tenant)
            .select_for_update()
            .select_related("user", "tenant")
            .filter(pk=membership_id)
            .first()
        )
        if (
            membership is None
            or membership.is_accepted
            or membership.invitation_sent_at is not None
            or membership.invitation_send_started_at is not None
            or (membership.invitation_expires_at is not None and membership.invitation_expires_at <= now)
        ):
            return False
        token = secrets.token_urlsafe(TOKEN_BYTES)
        membership.invitation_token_hash = hash_invitation_token(token)
        membership.invitation_send_started_at = now
        membership.save(update_fields=["invitation_token_hash", "invitation_send_started_at"])
    try:
        _invitation_email(membership, token).send()
    except Exception:
        Membership.all_objects.filter(pk=membership.pk, invitation_send_started_at=now).update(
            invitation_send_started_at=None, invitation_token_hash=""
        )
        raise
    with transaction.atomic():
        Membership.all_objects.filter(pk=membership.pk).update(invitation_sent_at=timezone.now())
        record_audit(
            tenant,
            actor="system",
            action="membership.invitation_sent",
            obj=membership,
            after={"email": membership.user.email, "role": membership.role},
        )
    return True


def invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("invitation", kwargs={"token": token})


def _invitation_email(membership: Membership, token: str) -> EmailMessage:
    tenant, user = membership.tenant, membership.user
    inviter = membership.invited_by.email if membership.invited_by_id else "A colleague"
    expires = timezone.localtime(membership.invitation_expires_at).strftime("%Y-%m-%d %H:%M %Z")
    if user.has_usable_password():
        step = "Sign in with your Tierwise account and accept or decline here:"
    else:
        step = "Choose a password and accept (or decline) here:"
    body = (
        f"Hello,\n\n{inviter} invited you to join {tenant.name} on Tierwise as "
        f"{membership.get_role_display()}.\n{step}\n\n{invitation_url(token)}\n\n"
        f"The link works once and expires on {expires}. If you did not expect this, ignore this email:\n"
        "nothing changes until you accept.\n"
    )
    return EmailMessage(
        subject=f"You're invited to {tenant.name} on Tierwise",
        body=body,
        to=[user.email],
        headers={
            TENANT_HEADER: tenant.slug,  # files the email under this tenant in the outbox
            SENSITIVE_HEADER: "invitation-link",
            SENSITIVE_ROLE_HEADER: membership.role,
        },
    )


# --- Accepting and declining (the invitation page) ---------------------------------------


@dataclass(frozen=True)
class InvitationView:
    membership: Membership
    needs_password: bool  # a person new to Tierwise chooses a password while accepting


def _invitation_tenant_id(token: str) -> int | None:
    """Which tenant's invitation a token opens, found before any tenant is known (accounts.rls lookup)."""
    if not token or len(token) > 200:
        return None
    ids = lookup_tenant_ids(Membership, "invitation_token_hash", hash_invitation_token(token))
    return ids[0] if len(ids) == 1 else None


def _pending_by_token(token: str, *, lock: bool = False) -> Membership | None:
    """Read inside the invitation's tenant (the caller's tenant_context)."""
    qs = Membership.all_objects.select_related("tenant", "user", "invited_by").filter(
        invitation_token_hash=hash_invitation_token(token), accepted_at__isnull=True
    )
    membership = (qs.select_for_update(of=("self",)) if lock else qs).first()
    if membership is None or membership.invitation_expires_at is None:
        return None
    if membership.invitation_expires_at <= timezone.now():
        return None
    return membership


def find_invitation(token: str) -> Membership | None:
    """The pending, unexpired invitation a token opens, or None (unknown, used, expired: alike)."""
    tenant_id = _invitation_tenant_id(token)
    if tenant_id is None:
        return None
    with tenant_context(tenant_id):
        return _pending_by_token(token)


def _locked_invitation(token: str) -> Membership:
    membership = _pending_by_token(token, lock=True)
    if membership is None:  # unknown, expired, or accepted, declined or rotated meanwhile
        raise InvalidInput("This invitation link is invalid or has expired.", code="invitation_invalid")
    return membership


def _check_acceptor(membership: Membership, user: User | None, password: str | None) -> None:
    invitee = membership.user
    if invitee.has_usable_password():
        if user is None or not user.is_authenticated or user.pk != invitee.pk:
            raise PermissionDenied(f"Sign in as {invitee.email} to answer this invitation.")
    elif password is not None:
        try:
            validate_password(password, invitee)
        except ValidationError as exc:
            raise InvalidInput("Choose another password.", details={"password": list(exc.messages)}) from exc


def accept_invitation(*, token: str, user: User | None, password: str | None = None) -> Membership:
    """Accepts a pending invitation. A person new to Tierwise sets `password` here; an existing user must be
    signed in as the invited email. The token is used up."""
    with tenant_context(_invitation_tenant_id(token)), transaction.atomic():
        return _accept(token, user, password)


def _accept(token: str, user: User | None, password: str | None) -> Membership:
    membership = _locked_invitation(token)
    invitee = membership.user
    if not invitee.has_usable_password() and not password:
        raise InvalidInput("Choose a password.", details={"password": ["This field is required."]})
    _check_acceptor(membership, user, password)
    if not invitee.has_usable_password():
        invitee.set_password(password)
        invitee.save(update_fields=["password"])
    membership.accepted_at = timezone.now()
    membership.invitation_token_hash = ""
    membership.save(update_fields=["accepted_at", "invitation_token_hash"])
    record_audit(
        membership.tenant,
        actor=invitee,
        action="membership.accepted",
        obj=membership,
        after={"email": invitee.email, "role": membership.role},
    )
    return membership


def decline_invitation(*, token: str, user: User | None) -> None:
    """Declines a pending invitation: the membership goes. An existing user must be signed in as the invitee."""
    with tenant_context(_invitation_tenant_id(token)), transaction.atomic():
        _decline(token, user)


def _decline(token: str, user: User | None) -> None:
    membership = _locked_invitation(token)
    _check_acceptor(membership, user, None)
    record_audit(
        membership.tenant,
        actor=membership.user,
        action="membership.declined",
        obj=membership,
        before={"email": membership.user.email, "role": membership.role},
    )
    membership.delete()
