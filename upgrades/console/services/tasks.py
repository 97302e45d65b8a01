"""Console tasks: from open signals and from customers' "talk to a person" requests (idempotent: one task per
signal or request), check-ins and follow-ups by hand; CSM outreach counted against the shared message cap."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import Conflict, InvalidInput, NotFound
from accounts.models import Contact, CustomerAccount, Tenant, User
from accounts.services import Actor, record_audit
from upgrades.console.models import ConsoleTask, TaskKind, TaskState
from upgrades.console.services.holdout import held_out_account_ids, require_not_held_out
from upgrades.offers.models import Feedback, FeedbackKind
from upgrades.rules.models import Signal, SignalState

SIGNAL_DUE = timedelta(days=3)
TALK_DUE = timedelta(days=1)


def _create(tenant: Tenant, **fields) -> ConsoleTask:
    try:
        with transaction.atomic():
            return ConsoleTask.objects.create(tenant=tenant, **fields)
    except IntegrityError:
        key = {k: fields[k] for k in ("signal", "feedback") if fields.get(k) is not None}
        return ConsoleTask.objects.for_tenant(tenant).get(**key)


def tasks_from_signals(tenant: Tenant, *, now=None) -> int:
    """One task per open signal that has none yet, assigned to the account's CSM. Accounts in a running
    experiment's control group get none (a signal task suggests upgrade outreach); they get theirs when the
    experiment stops, if the signal is still open."""
    now = now or timezone.now()
    taken = ConsoleTask.objects.for_tenant(tenant).filter(signal__isnull=False).values("signal_id")
    signals = (
        Signal.objects.for_tenant(tenant)
        .filter(state=SignalState.OPEN)
        .exclude(pk__in=taken)
        .exclude(account_id__in=held_out_account_ids(tenant))
        .select_related("account")
    )
    rows = [
        ConsoleTask(
            tenant=tenant,
            account=s.account,
            kind=TaskKind.SIGNAL,
            title=f"{s.get_kind_display()}: {(s.evidence or {}).get('sentence', '')}"[:200],
            due_at=now + SIGNAL_DUE,
            assigned_to_id=s.account.assigned_csm_id,
            signal=s,
            created_by=None,
        )
        for s in signals
    ]
    made = ConsoleTask.objects.bulk_create(rows, ignore_conflicts=True)
    return len(made)


def task_from_talk_request(tenant: Tenant, *, feedback: Feedback, now=None) -> ConsoleTask:
    if feedback.tenant_id != tenant.pk or feedback.kind != FeedbackKind.TALK_TO_PERSON:
        raise NotFound("No such request.")
    account = CustomerAccount.objects.for_tenant(tenant).get(pk=feedback.account_id)
    return _create(
        tenant,
        account=account,
        kind=TaskKind.TALK_REQUEST,
        title=f"{account.name} asked to talk to a person",
        notes=(getattr(feedback, "text", "") or "")[:2000],
        due_at=(now or timezone.now()) + TALK_DUE,
        assigned_to_id=account.assigned_csm_id,
        feedback=feedback,
    )


def tasks_from_talk_requests(tenant: Tenant, *, now=None) -> int:
    taken = ConsoleTask.objects.for_tenant(tenant).filter(feedback__isnull=False).values("feedback_id")
    count = 0
    for feedback in Feedback.objects.for_tenant(tenant).filter(kind=FeedbackKind.TALK_TO_PERSON).exclude(pk__in=taken):
        task_from_talk_request(tenant, feedback=feedback, now=now)
        count += 1
    return count


def create_task(
    tenant: Tenant, *, account: CustomerAccount, actor: User, kind: str, title: str, due_at, notes: str = ""
) -> ConsoleTask:
    if account.tenant_id != tenant.pk:
        raise NotFound("No such account.")
    errors = {}
    if kind not in (TaskKind.CHECK_IN, TaskKind.FOLLOW_UP, TaskKind.RENEWAL):
        errors["kind"] = ["check_in, follow_up or renewal."]
    if not title.strip():
        errors["title"] = ["Say what to do."]
    if due_at is None:
        errors["due_at"] = ["A due date."]
    if errors:
        raise InvalidInput("The task is not valid.", details=errors)
    task = _create(
        tenant,
        account=account,
        kind=kind,
        title=title.strip()[:200],
        notes=notes,
        due_at=due_at,
        assigned_to_id=account.assigned_csm_id or actor.pk,
        created_by=actor,
    )
    record_audit(tenant, actor=actor, action="console.task.create", obj=task)
    return task


def close_task(tenant: Tenant, *, task: ConsoleTask, actor: Actor, done: bool = True) -> ConsoleTask:
    if task.tenant_id != tenant.pk:
        raise NotFound("No such task.")
    if task.state != TaskState.OPEN:
        raise Conflict("The task is closed already.", code="invalid_state")
    task.state = TaskState.DONE if done else TaskState.DISMISSED
    task.completed_at = timezone.now()
    task.save(update_fields=["state", "completed_at"])
    record_audit(tenant, actor=actor, action=f"console.task.{task.state}", obj=task)
    return task


def record_csm_outreach(
    tenant: Tenant,
    *,
    contact: Contact,
    actor: User,
    note: str,
    task: ConsoleTask | None = None,
    upgrade: bool = True,
):
    """Before a CSM reaches out: counted against the shared cap; a suppressed answer means don't.
    Upgrade outreach to an account in a running experiment's control group is refused (Conflict
    held_out); a check-in that is not about an upgrade (`upgrade=False`) stays allowed."""
    from messaging.services.sending import record_outreach

    if contact.tenant_id != tenant.pk:
        raise NotFound("No such contact.")
    if upgrade:
        require_not_held_out(tenant, contact.account_id, doing="reach out about an upgrade")
    cause = f"console:task:{task.pk}" if task else f"console:contact:{contact.pk}:{timezone.now():%Y%m%d}"
    return record_outreach(tenant, contact=contact, cause=cause, actor=actor, note=note[:500])
