"""The staff workspace on the admin index (`/admin/`): a thin view over `upgrades.selectors`.

accounts may not import upgrades, so `UpgradesConfig.ready()` registers `workspace_context`
with `accounts.admin_site.register_index_context`; the admin site's `index()` merges what it
returns into the context of `templates/admin/index.html`.

What a link offers follows the admin's own permission checks (`has_view_permission`,
`has_add_permission` of the registered ModelAdmin), so the dashboard never shows a link
that the page behind it would refuse.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, AuditEntry, Capability, CustomerAccount, Membership
from billing.models import License, PlanChange
from catalog.models import Tier
from catalog.templatetags.catalog_money import money
from messaging.models import OutboxEmail
from upgrades import selectors


@dataclass(frozen=True)
class TryLink:
    title: str
    text: str
    url: str | None = None  # None: shown, but this role may not open it
    note: str = ""
    external: bool = False


@dataclass(frozen=True)
class PendingRow:
    pending: selectors.PendingApproval
    url: str | None
    action: str  # link text: "Review and approve" / "Publish" for those who may, else "View"


@dataclass(frozen=True)
class LinkedRow:
    row: Any
    url: str | None


def _allows(request: HttpRequest, model: type[Model], action: str) -> bool:
    try:
        model_admin = admin.site.get_model_admin(model)
    except NotRegistered:
        return False
    return bool(getattr(model_admin, f"has_{action}_permission")(request))


def _changelist(model: type[Model], **params: Any) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _change(obj: Model) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def capability_labels(membership: Membership | None, *, superuser: bool) -> list[str]:
    if superuser:
        return ["Everything (platform superuser)"]
    if membership is None:
        return []
    labels = [label for value, label in Capability.choices if membership.can(value)]
    return ["Everything in this workspace"] if len(labels) == len(Capability.choices) else labels


def try_links(request: HttpRequest, overview: selectors.WorkspaceOverview) -> list[TryLink]:
    """The demo's main flows, each linked only where this staff member's role may open it."""
    links: list[TryLink] = []
    can_view_tiers = _allows(request, Tier, "view")
    links.append(
        TryLink(
            "Pricing preview",
            "The pricing table exactly as customers see it: monthly/annual switch, anchor tier, add-ons, bundles.",
            reverse("admin:catalog_tier_preview") if can_view_tiers else None,
            external=True,
        )
    )
    links.append(
        TryLink(
            "Entitlement matrix",
            "Features × tiers in one grid, drafts next to published versions; cells flagged where a higher tier "
            "grants less.",
            reverse("admin:catalog_tier_matrix") if can_view_tiers else None,
        )
    )
    trial = overview.trial
    if trial is not None and trial.license is not None:
        grant = trial.grant
        ends = timezone.localtime(grant.ends_at, zoneinfo.ZoneInfo(overview.tenant.time_zone))
        links.append(
            TryLink(
                "A licence with a trial",
                f"{grant.account.name} is trying {grant.tier or grant.addon} on top of its "
                f"{trial.license.tier} plan until {ends.day} {ends:%b}; its billing date is untouched.",
                _change(trial.license) if _allows(request, License, "view") else None,
            )
        )
    else:
        links.append(TryLink("A licence with a trial", "No trial is running in this workspace right now."))
    upgrade = overview.settled_upgrade
    if upgrade is not None:
        source = upgrade.from_price.tier if upgrade.from_price_id and upgrade.from_price.tier_id else None
        target = upgrade.target_price.tier if upgrade.target_price.tier_id else upgrade.target_price
        links.append(
            TryLink(
                "A settled upgrade",
                f"{upgrade.account.name}: {source or 'new'} → {target}; every quote line next to what Stripe charged "
                f"({money(upgrade.charged_amount, upgrade.currency) or 'not charged'}).",
                _change(upgrade) if _allows(request, PlanChange, "view") else None,
            )
        )
    else:
        links.append(TryLink("A settled upgrade", "No upgrade has settled in this workspace yet."))
    links.append(
        TryLink(
            "API documentation",
            "Events, entitlement checks, accounts and the pricing table, with a try-it-out console.",
            reverse("api-docs"),
            external=True,
        )
    )
    can_add_key = _allows(request, ApiKey, "add")
    links.append(
        TryLink(
            "Create an API key",
            "Keys are scoped (ingest, read, write) and shown once; use one with the API docs' Authorize button.",
            reverse("admin:accounts_apikey_add") if can_add_key else None,
            note="" if can_add_key else "Owners create API keys.",
        )
    )
    links.append(
        TryLink(
            "Email outbox",
            "Mail this workspace sent (in development it stays here): e.g. the invitation to a new colleague. Owners "
            "invite people under Memberships.",
            reverse("admin:messaging_outboxemail_changelist") if _allows(request, OutboxEmail, "view") else None,
        )
    )
    return links


def chart_data(overview: selectors.WorkspaceOverview) -> dict[str, Any] | None:
    """MRR share per tier in the tenant's currency, for one doughnut chart; None when there is nothing to compare.

    Amounts stay integer minor units; the labels are formatted here, so the browser never does money arithmetic.
    """
    rows = [t for t in overview.tiers if t.currency == overview.currency and t.mrr > 0]
    if len(rows) < 2:
        return None
    return {
        "labels": [str(t.tier) for t in rows],
        "amounts": [t.mrr for t in rows],
        "display": [money(t.mrr, t.currency) for t in rows],
    }


def workspace_context(request: HttpRequest) -> dict[str, Any]:
    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    overview = selectors.workspace_overview(tenant, user=request.user, membership=membership)
    can_view_accounts = _allows(request, CustomerAccount, "view")
    can_view_licences = _allows(request, License, "view")
    can_view_plan_changes = _allows(request, PlanChange, "view")
    pending_rows = []
    for pending in overview.pending:
        model = type(pending.item)
        url = _change(pending.item) if _allows(request, model, "view") else None
        action = "Review and approve" if pending.can_approve else "Publish" if pending.can_publish else "View"
        pending_rows.append(PendingRow(pending, url, action))
    return {
        "workspace": overview,
        "workspace_capabilities": capability_labels(membership, superuser=request.user.is_superuser),
        "workspace_links": try_links(request, overview),
        "workspace_pending": pending_rows,
        "workspace_stages": [
            LinkedRow(s, _changelist(CustomerAccount, lifecycle_stage__exact=s.stage) if can_view_accounts else None)
            for s in overview.stages
        ],
        "workspace_tiers": [
            LinkedRow(t, _changelist(License, tier__id__exact=t.tier.pk) if can_view_licences else None)
            for t in overview.tiers
        ],
        "workspace_plan_changes": [
            LinkedRow(pc, _change(pc) if can_view_plan_changes else None) for pc in overview.plan_changes
        ],
        "workspace_urls": {
            "accounts": _changelist(CustomerAccount) if can_view_accounts else None,
            "licences": _changelist(License) if can_view_licences else None,
            "plan_changes": _changelist(PlanChange) if can_view_plan_changes else None,
            "pending": _changelist(Tier, state__exact="awaiting_approval") if _allows(request, Tier, "view") else None,
            "audit": _changelist(AuditEntry) if _allows(request, AuditEntry, "view") else None,
        },
        "workspace_chart": chart_data(overview),
    }
