"""What the console reads: an account (404 across tenants), its 360 (plan, usage against limits, scores with
factors, one timeline, contacts), proposals, tasks, playbooks, saved views. Each list is one query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accounts.errors import NotFound
from accounts.models import Contact, CustomerAccount, Tenant, User
from billing.models import License, LicenseChange, PlanChange
from messaging.models import Message
from upgrades.console.models import (
    AccountNote,
    ConsoleTask,
    Objection,
    Playbook,
    Proposal,
    ProposalOption,
    SavedView,
    TaskState,
)
from upgrades.offers.models import Feedback, Offer, OfferEvent, Trial
from upgrades.rules.models import AccountScore, Signal

TIMELINE_LIMIT = 40


def get_account(tenant: Tenant, account_id: int) -> CustomerAccount:
    account = CustomerAccount.objects.for_tenant(tenant).select_related("assigned_csm").filter(pk=account_id).first()
    if account is None:
        raise NotFound("No such account.")
    return account


def get_proposal(tenant: Tenant, proposal_id: int) -> Proposal:
    proposal = (
        Proposal.objects.for_tenant(tenant)
        .select_related("account", "approved_by", "created_by")
        .filter(pk=proposal_id)
        .first()
    )
    if proposal is None:
        raise NotFound("No such proposal.")
    return proposal


def proposal_contacts(tenant: Tenant, proposal: Proposal) -> list[Contact]:
    """The people of the proposal's account the CSM may email it to (the page lists them, none pre-chosen)."""
    return list(
        Contact.objects.for_tenant(tenant).filter(account_id=proposal.account_id).order_by("name", "email", "id")
    )


def get_proposal_contact(tenant: Tenant, proposal: Proposal, contact_id: int) -> Contact:
    """One contact of the proposal's account; another account's or tenant's id is NotFound, as a missing one."""
    contact = Contact.objects.for_tenant(tenant).filter(pk=contact_id, account_id=proposal.account_id).first()
    if contact is None:
        raise NotFound("No such contact.")
    return contact


def proposal_options(tenant: Tenant, proposal: Proposal) -> list[ProposalOption]:
    """The options with `rows`: the price path with its dates as datetimes (shown in the tenant's zone)."""
    options = list(ProposalOption.objects.for_tenant(tenant).filter(proposal=proposal).order_by("position", "id"))
    for option in options:
        option.rows = [{**row, "date": datetime.fromisoformat(row["date"])} for row in option.price_path]  # type: ignore[attr-defined]
    return options


def get_task(tenant: Tenant, task_id: int) -> ConsoleTask:
    task = ConsoleTask.objects.for_tenant(tenant).select_related("account").filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    return task


def get_playbook(tenant: Tenant, playbook_id: int) -> Playbook:
    playbook = Playbook.objects.for_tenant(tenant).filter(pk=playbook_id).first()
    if playbook is None:
        raise NotFound("No such playbook.")
    return playbook


def playbooks_with_objections(tenant: Tenant) -> list[Playbook]:
    return list(Playbook.objects.for_tenant(tenant).prefetch_related("objections").order_by("name"))


def playbooks_for_signals(tenant: Tenant, account: CustomerAccount) -> list[Playbook]:
    """Active playbooks linked to the kinds of the account's open signals (when to propose)."""
    kinds = set(Signal.objects.for_tenant(tenant).filter(account=account, state="open").values_list("kind", flat=True))
    if not kinds:
        return []
    rows = Playbook.objects.for_tenant(tenant).filter(active=True).prefetch_related("objections").order_by("name")
    return [p for p in rows if kinds & set(p.signal_kinds or [])]


def objections(tenant: Tenant) -> list[Objection]:
    return list(Objection.objects.for_tenant(tenant).select_related("playbook").filter(playbook__active=True))


def saved_views(tenant: Tenant, user: User) -> list[SavedView]:
    return list(SavedView.objects.for_tenant(tenant).filter(user=user).order_by("name"))


def tenant_csms(tenant: Tenant) -> list[User]:
    from accounts.models import Membership

    return [
        m.user for m in Membership.objects.for_tenant(tenant).accepted().select_related("user").order_by("user__email")
    ]


def list_proposals(tenant: Tenant, *, state: str = "", account: CustomerAccount | None = None) -> list[Proposal]:
    qs = Proposal.objects.for_tenant(tenant).select_related("account").order_by("-created_at", "-id")
    if state:
        qs = qs.filter(state=state)
    if account is not None:
        qs = qs.filter(account=account)
    return list(qs[:100])


@dataclass
class Account360:
    account: CustomerAccount
    license: License | None
    score: AccountScore | None
    contacts: list[Contact]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[ConsoleTask] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    score_changes: list[dict[str, Any]] = field(default_factory=list)


def _ev(at: datetime | None, kind: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"at": at, "kind": kind, "text": text, **extra}


def timeline(tenant: Tenant, account: CustomerAccount) -> list[dict[str, Any]]:
    """Signals, offers and their events, messages, trials, plan changes and licence changes, feedback, notes
    and proposals — newest first, one query per source."""
    t = Offer.objects.for_tenant(tenant)
    items: list[dict[str, Any]] = []
    for s in Signal.objects.for_tenant(tenant).filter(account=account).order_by("-created_at")[:TIMELINE_LIMIT]:
        items.append(
            _ev(
                s.created_at,
                "signal",
                f"{s.get_kind_display()}: {(s.evidence or {}).get('sentence', '')}",
                state=s.state,
            )
        )
    offers = {o.pk: o for o in t.filter(account=account).order_by("-created_at")[:TIMELINE_LIMIT]}
    for e in OfferEvent.objects.for_tenant(tenant).filter(offer_id__in=list(offers)).order_by("-at")[:TIMELINE_LIMIT]:
        o = offers[e.offer_id]
        items.append(
            _ev(e.at, "offer", f"Offer of {o.target_key}: {e.from_state or 'new'} → {e.to_state}", note=e.note)
        )
    for m in Message.objects.for_tenant(tenant).filter(account=account).order_by("-created_at")[:TIMELINE_LIMIT]:
        label = m.template_key or ("CSM outreach" if m.channel == "csm" else m.channel)
        items.append(_ev(m.created_at, "message", f"{label} ({m.channel}): {m.state}", reason=m.suppressed_reason))
    for tr in Trial.objects.for_tenant(tenant).filter(account=account).order_by("-created_at")[:TIMELINE_LIMIT]:
        items.append(_ev(tr.created_at, "trial", f"Trial of {tr.target_key} until {tr.ends_at:%d %b %Y}: {tr.state}"))
    for pc in (
        PlanChange.objects.for_tenant(tenant).filter(license__account=account).order_by("-created_at")[:TIMELINE_LIMIT]
    ):
        items.append(
            _ev(pc.created_at, "plan_change", f"Plan change {pc.kind}: {pc.state}", amount=pc.quote_amount_due)
        )
    for lc in (
        LicenseChange.objects.for_tenant(tenant).filter(account=account).order_by("-effective_at")[:TIMELINE_LIMIT]
    ):
        items.append(
            _ev(
                lc.effective_at,
                "license",
                f"Licence {lc.kind}: {lc.reason or ''}".strip().rstrip(":"),
                by=lc.actor_label,
            )
        )
    for f in Feedback.objects.for_tenant(tenant).filter(account=account).order_by("-created_at")[:TIMELINE_LIMIT]:
        items.append(_ev(f.created_at, "feedback", f"{f.get_kind_display()}" + (f": {f.text}" if f.text else "")))
    for n in (
        AccountNote.objects.for_tenant(tenant)
        .filter(account=account)
        .select_related("author")
        .order_by("-created_at")[:TIMELINE_LIMIT]
    ):
        items.append(_ev(n.created_at, "note", n.body, by=str(n.author or "")))
    for p in Proposal.objects.for_tenant(tenant).filter(account=account).order_by("-created_at")[:TIMELINE_LIMIT]:
        items.append(
            _ev(p.created_at, "proposal", f"{p.get_kind_display()}: {p.title} ({p.get_state_display()})", id=p.pk)
        )
    items.sort(key=lambda i: i["at"] or datetime.min, reverse=True)
    return items[: TIMELINE_LIMIT * 2]


def _usage(tenant: Tenant, account: CustomerAccount) -> list[dict[str, Any]]:
    from usage.selectors.overview import account_usage_overview

    try:
        overview = account_usage_overview(tenant, account=account, days=60)
    except Exception:  # an account without a plan has nothing to chart
        return []
    return [
        {
            "feature": s.feature,
            "name": s.name,
            "unit": s.unit,
            "window": s.window_label,
            "labels": [d.isoformat() for d in s.days],
            "counted": list(s.counted),
            "limit": s.limit,
            "last": s.counted[-1] if s.counted else 0,
        }
        for s in overview.series
    ]


def account_360(tenant: Tenant, account: CustomerAccount) -> Account360:
    license = License.objects.for_tenant(tenant).select_related("tier", "price").filter(account=account).first()
    score = AccountScore.objects.for_tenant(tenant).filter(account=account).first()
    changes = []
    if score is not None and score.previous_readiness is not None:
        changes.append({"name": "Readiness", "from": score.previous_readiness, "to": score.readiness})
    if score is not None and score.previous_health is not None:
        changes.append({"name": "Health", "from": score.previous_health, "to": score.health})
    return Account360(
        account=account,
        license=license,
        score=score,
        contacts=list(Contact.objects.for_tenant(tenant).filter(account=account).order_by("name", "email")),
        timeline=timeline(tenant, account),
        tasks=list(
            ConsoleTask.objects.for_tenant(tenant).filter(account=account, state=TaskState.OPEN).order_by("due_at")
        ),
        proposals=list_proposals(tenant, account=account),
        usage=_usage(tenant, account),
        score_changes=changes,
    )


def shared_proposals(tenant: Tenant, account: CustomerAccount) -> list[Proposal]:
    """For the customer's portal: the account's proposals shared with it (and those it decided on), with their
    options and price paths (`proposal_options`); accept with services.proposals.accept_proposal, decline with
    decline_proposal, the document from upgrades.console.document."""
    return list(
        Proposal.objects.for_tenant(tenant)
        .filter(account=account, state__in=["shared", "accepted", "fulfilled", "declined"])
        .order_by("-shared_at", "-id")
    )
