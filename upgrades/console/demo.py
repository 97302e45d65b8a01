"""The console's demo (idempotent, actor "demo-seed"): the demo CSM's worklist with the real signals the rules
fired (tasks made from them), a customer's "talk to a person" request, a playbook with objections, a proposal
whose discount is beyond policy awaiting approval, a renewal packet (with its PDF) for the account that
renews soonest, and a proposal ready to share whose price steps up over the policy's longest term (billed by a
Stripe subscription schedule once accepted)."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

from accounts.errors import TierwiseError
from accounts.models import Contact, CustomerAccount, Membership, Role, Tenant
from accounts.services import audited_as
from accounts.tenancy import tenant_context
from billing.models import License, LicenseStatus
from billing.selectors import current_discount_policy
from catalog.demo import SEED_ACTOR
from catalog.models import DiscountPolicy
from catalog.pricing import parse_term_rules
from upgrades.console.models import Objection, Playbook, Proposal, ProposalKind
from upgrades.console.services import proposals as proposal_services
from upgrades.console.services import tasks as task_services
from upgrades.console.services.options import OptionRequest
from upgrades.offers.models import Feedback, FeedbackKind
from upgrades.rules.models import Signal, SignalState

APPROVAL_TITLE = "Demo: Business for two years (discount beyond policy)"
RENEWAL_TITLE = "Demo: renewal packet"
RAMP_TITLE = "Demo: Business on a ramped multi-year term"
OBJECTIONS = [
    (
        "cost",
        "It costs too much right now.",
        "Pay annually and the policy takes the term discount off every invoice; "
        "the price path shows each one, and the value model puts the hours saved above the difference.",
    ),
    (
        "implementation",
        "We have no time to switch.",
        "Nothing to migrate: the upgrade keeps your data and settings, "
        "and the new limits apply the minute the change settles.",
    ),
    (
        "training",
        "Our team would need training.",
        "Your CSM runs a 30-minute session for your admins in the first "
        "week, and the help centre covers every feature of the plan.",
    ),
]


def _say(message: str) -> None:
    sys.stdout.write(f"[console] {message}\n")


def _csm(tenant: Tenant):
    membership = (
        Membership.objects.for_tenant(tenant).filter(role=Role.CSM).select_related("user").order_by("id").first()
    )
    return membership.user if membership else None


def _playbook(tenant: Tenant) -> Playbook:
    playbook, _ = Playbook.objects.for_tenant(tenant).get_or_create(
        tenant=tenant,
        name="Near the limit",
        defaults={
            "signal_kinds": ["upgrade_opportunity", "renewal"],
            "when_to_propose": "An account above 80 % of a limit for a week, or 60 days before renewal.",
            "quantify_impact": "Hours saved from the value model with the account's own usage; the cost of hitting "
            "the limit (blocked calls) against the price difference.",
        },
    )
    if not Objection.objects.for_tenant(tenant).filter(playbook=playbook).exists():
        Objection.objects.bulk_create(
            Objection(tenant=tenant, playbook=playbook, category=c, objection=o, answer=a, position=i)
            for i, (c, o, a) in enumerate(OBJECTIONS)
        )
    return playbook


def _target(license: License) -> str:
    return "business" if license.tier.key != "business" else license.tier.key


def ramp_percents(policy: DiscountPolicy | None) -> tuple[Decimal, ...]:
    """A step-up ramp within policy over its longest term: the policy's discount in year one, then less each
    year in even steps, so the price climbs towards the list (15 % over 3 years: 15 %, 12.5 %, 10 %). Empty
    when the policy has no term of several years."""
    rules = [r for r in parse_term_rules(policy.term_rules) if r.years > 1] if policy is not None else []
    if not rules:
        return ()
    longest = max(rules, key=lambda r: r.years)
    top = Decimal(longest.basis) / 100
    step = top / (2 * longest.years)
    return tuple((top - k * step).quantize(Decimal("0.01")) for k in range(longest.years))


def _propose(
    tenant: Tenant,
    *,
    license: License,
    actor,
    title: str,
    kind: str,
    percent: Decimal | None,
    options: list[OptionRequest] | None = None,
) -> Proposal:
    existing = Proposal.objects.for_tenant(tenant).filter(title=title).first()
    if existing is not None:
        return existing
    proposal = proposal_services.build_proposal(
        tenant,
        account=license.account,
        actor=actor,
        options=options
        or [
            OptionRequest(tier=_target(license), interval="year", seats=license.seats, term_years=1),
            OptionRequest(tier=_target(license), interval="year", seats=license.seats, term_years=2),
        ],
        title=title,
        intro=OBJECTIONS[0][2],
        kind=kind,
        discount_percent=percent,
    )
    proposal_services.submit_proposal(tenant, proposal=proposal, actor=actor)
    return proposal


def seed_console_demo(tenant: Tenant) -> dict[str, Any]:
    with tenant_context(tenant), audited_as(SEED_ACTOR):
        csm = _csm(tenant)
        out: dict[str, Any] = {}
        if csm is None:
            _say("no CSM member: skipped")
            return out
        signalled = Signal.objects.for_tenant(tenant).filter(state=SignalState.OPEN).values("account_id")
        CustomerAccount.objects.for_tenant(tenant).filter(assigned_csm__isnull=True, pk__in=signalled).update(
            assigned_csm=csm
        )
        first = CustomerAccount.objects.for_tenant(tenant).order_by("id").values_list("id", flat=True)[:30]
        CustomerAccount.objects.for_tenant(tenant).filter(assigned_csm__isnull=True, pk__in=list(first)).update(
            assigned_csm=csm
        )
        contact = Contact.objects.for_tenant(tenant).filter(account__assigned_csm=csm).select_related("account").first()
        if contact and not Feedback.objects.for_tenant(tenant).filter(kind=FeedbackKind.TALK_TO_PERSON).exists():
            Feedback.objects.create(
                tenant=tenant,
                account=contact.account,
                contact=contact,
                kind=FeedbackKind.TALK_TO_PERSON,
                text="Before we commit to a bigger plan I'd like to talk the options through with someone.",
                source="portal",
            )
        out["tasks"] = task_services.tasks_from_signals(tenant) + task_services.tasks_from_talk_requests(tenant)
        out["playbook"] = _playbook(tenant).pk
        licences = (
            License.objects.for_tenant(tenant)
            .filter(status=LicenseStatus.ACTIVE, account__assigned_csm=csm, tier__is_free=False)
            .select_related("account", "tier")
            .order_by("current_period_end", "id")
        )
        policy = current_discount_policy(tenant)
        cap = Decimal(policy.cap_percent) if policy else Decimal(0)
        picked = list(licences[:3])
        try:
            if picked:
                renewal = _propose(
                    tenant,
                    license=picked[0],
                    actor=csm,
                    title=RENEWAL_TITLE,
                    kind=str(ProposalKind.RENEWAL),
                    percent=None,
                )
                out["renewal"] = renewal.pk
            if len(picked) > 1:
                beyond = min(cap + Decimal(5), Decimal(60))
                pending = _propose(
                    tenant,
                    license=picked[1],
                    actor=csm,
                    title=APPROVAL_TITLE,
                    kind=str(ProposalKind.UPGRADE),
                    percent=beyond,
                )
                out["awaiting_approval"] = pending.pk
            ramp = ramp_percents(policy)
            if len(picked) > 2 and ramp:
                lic = picked[2]
                ramped = _propose(
                    tenant,
                    license=lic,
                    actor=csm,
                    title=RAMP_TITLE,
                    kind=str(ProposalKind.UPGRADE),
                    percent=None,
                    options=[
                        OptionRequest(
                            tier=_target(lic),
                            interval="year",
                            seats=lic.seats,
                            term_years=len(ramp),
                            year_percents=ramp,
                        ),
                        OptionRequest(tier=_target(lic), interval="year", seats=lic.seats, term_years=len(ramp)),
                    ],
                )
                out["ramp"] = ramped.pk
        except TierwiseError as exc:
            _say(f"proposal not made: {exc.message}")
        _say(f"CSM {csm.email}: {out}")
        return out
