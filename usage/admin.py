"""Staff view of usage: per customer account, what the product sends and where it stands.

Read-only for every role (raw events are append-only and nobody edits them here). The list
shows every account's most-pressured feature; those numbers come from one set-based selector
call per page (`selectors.account_standings`), never from a per-row entitlement lookup, and
sorting/filtering by them is done in the database through annotations built from its answer.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from accounts.admin_base import TenantScopedAdmin, scope_related_queryset
from accounts.models import Capability
from usage import selectors
from usage.models import UsageAccount

STATE_LABELS = {
    selectors.EntitlementState.OK: "OK",
    selectors.EntitlementState.SOFT_LIMIT: "Soft limit reached",
    selectors.EntitlementState.HARD_LIMIT: "Limit reached",
    selectors.EntitlementState.LOCKED: "Not in plan",
}
CHART_DAYS = 90
NO_PRESSURE = -1  # sorts accounts with nothing limited (or no usage) last


def _standings(request: HttpRequest) -> dict[int, selectors.AccountStanding]:
    """The tenant's standings, computed once per request (list, filter and columns share them)."""
    if not hasattr(request, "_usage_standings"):
        tenant = getattr(request, "tenant", None)
        request._usage_standings = selectors.account_standings(tenant) if tenant is not None else {}
    return request._usage_standings


def _rank(groups: dict[int, list[int]], default: int) -> Case | Value:
    """An annotation giving each account its number, one WHEN per distinct value (not per account)."""
    if not groups:
        return Value(default, output_field=IntegerField())
    return Case(
        *[When(pk__in=ids, then=Value(value)) for value, ids in sorted(groups.items())],
        default=Value(default),
        output_field=IntegerField(),
    )


class StandingFilter(admin.SimpleListFilter):
    title = "standing"
    parameter_name = "standing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (selectors.Standing.HARD_LIMIT, "Limit reached"),
            (selectors.Standing.SOFT_LIMIT, "Soft limit reached"),
            (selectors.Standing.OK, "Within limits"),
            ("locked_hits", "Hitting locked features (30 days)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if not value:
            return queryset
        standings = _standings(request).values()
        if value == "locked_hits":
            return queryset.filter(pk__in=[s.account_id for s in standings if s.gate_hits])
        return queryset.filter(pk__in=[s.account_id for s in standings if s.standing == value])


class StandingChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        standings = _standings(request)
        self.result_list = list(self.result_list)
        for obj in self.result_list:
            obj.usage_standing = standings.get(obj.pk)


@admin.register(UsageAccount)
class UsageAccountAdmin(TenantScopedAdmin):
    list_display = ["account", "tier", "most_pressured", "gate_hits"]
    list_display_links = ["account"]
    list_filter = [StandingFilter, "lifecycle_stage"]
    search_fields = ["name", "external_id"]
    actions = None
    view_capability = Capability.VIEW
    list_per_page = 50

    class Media:
        css = {"all": ["usage/usage-admin.css"]}

    # Read-only for everyone: usage comes from the product, plans from billing.
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return StandingChangeList

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # Most pressured first (an annotation, so not in `ordering`, which admin checks against fields).
        return ["-usage_pressure", "name"] if getattr(request, "_usage_list", False) else ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The same scoping as TenantScopedAdmin.get_queryset, without ModelAdmin's ordering (which,
        # on the list, names the annotations added below).
        qs = scope_related_queryset(request, self.model, self.model._default_manager.get_queryset())
        if getattr(request, "_usage_list", False):
            pressure: dict[int, list[int]] = {}
            hits: dict[int, list[int]] = {}
            for s in _standings(request).values():
                if s.top_percent is not None:
                    pressure.setdefault(min(s.top_percent, 100_000), []).append(s.account_id)
                if s.gate_hits:
                    hits.setdefault(s.gate_hits, []).append(s.account_id)
            qs = qs.annotate(usage_pressure=_rank(pressure, NO_PRESSURE), usage_gate_hits=_rank(hits, 0))
        return qs.order_by(*self.get_ordering(request))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        request._usage_list = True
        extra_context = {
            "title": "Usage & entitlements by account",
            "subtitle": None,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="Account", ordering="name")
    def account(self, obj: UsageAccount) -> str:
        return format_html('{} <span class="tw-u-muted tw-u-ext">{}</span>', obj.name, obj.external_id)

    @admin.display(description="Tier")
    def tier(self, obj: UsageAccount) -> str:
        standing = getattr(obj, "usage_standing", None)
        if standing is None or standing.plan.tier_name is None:
            return "—"
        plan = standing.plan
        extra = []
        if plan.seats is None:
            extra.append("no licence")
        if plan.addon_keys:
            extra.append("+ " + ", ".join(plan.addon_keys))
        if plan.grant_labels:
            extra.append("trial/grant")
        if not extra:
            return plan.tier_name
        return format_html('{} <span class="tw-u-muted">({})</span>', plan.tier_name, "; ".join(extra))

    @admin.display(description="Closest to its limit (% used)", ordering="usage_pressure")
    def most_pressured(self, obj: UsageAccount) -> str:
        standing = getattr(obj, "usage_standing", None)
        if standing is None or standing.top is None:
            return format_html('<span class="tw-u-muted">{}</span>', "nothing limited in use")
        top = standing.top
        return format_html(
            '<span class="tw-u-pressure" data-testid="pressure" data-state="{}">'
            '<span class="tw-u-meter"><span class="tw-u-meter-fill tw-u-{}" style="width:{}%"></span></span>'
            "{} <strong>{}%</strong></span>",
            top.state,
            top.state,
            min(standing.top_percent or 0, 100),
            top.name,
            standing.top_percent,
        )

    @admin.display(description="Gate hits, 30 days", ordering="usage_gate_hits")
    def gate_hits(self, obj: UsageAccount) -> str:
        standing = getattr(obj, "usage_standing", None)
        if standing is None or not standing.gate_hits:
            return format_html('<span class="tw-u-muted">{}</span>', "none")
        return format_html(
            '<span class="tw-u-hits">{}</span> <span class="tw-u-muted tw-u-hits-features">{}</span>',
            standing.gate_hits,
            ", ".join(standing.gate_hit_features),
        )

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "by-external-id/<str:external_id>/",
                self.admin_site.admin_view(self.by_external_id_view),
                name=f"{info[0]}_{info[1]}_by_external_id",
            ),
            *super().get_urls(),
        ]

    def by_external_id_view(self, request: HttpRequest, external_id: str) -> HttpResponse:
        """The account's page by the vendor's id (stable across demo re-seeds, unlike row ids)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        # A NUL byte can't reach PostgreSQL (it fails there as a 500); no stored id has one.
        obj = None if "\x00" in external_id else self.get_queryset(request).filter(external_id=external_id).first()
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, external_id)
        return redirect(reverse("admin:usage_usageaccount_change", args=[obj.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        event = request.GET.get("event", "").replace("\x00", "").strip()[:100] or None
        overview = selectors.account_usage_overview(obj.tenant, account=obj, days=CHART_DAYS, event=event)
        events = [
            {"event": e, "properties": json.dumps(e.properties, sort_keys=True, ensure_ascii=False)}
            for e in overview.events
        ]
        names = {key: rule.name for key, rule in overview.entitlements.plan.features.items()}
        gate_hits = [
            {
                "event": e,
                "feature": names.get(str(e.properties.get("feature", "")), e.properties.get("feature") or "—"),
                "reason": str(e.properties.get("reason") or "—").replace("_", " "),
                "quantity": e.properties.get("quantity", ""),
            }
            for e in overview.gate_hits
        ]
        sources = {key: ", ".join(rule.sources) for key, rule in overview.entitlements.plan.features.items()}
        context = {
            **self.admin_site.each_context(request),
            "title": f"{obj.name}: usage & entitlements",
            "subtitle": None,
            "opts": self.opts,
            "original": obj,
            "has_view_permission": True,
            "overview": overview,
            "state_labels": STATE_LABELS,
            "events": events,
            "gate_hits": gate_hits,
            "sources": sources,
            "chart_data": [s.as_chart() for s in overview.series],
            "chart_days": CHART_DAYS,
            "account_url": _admin_url("accounts_customeraccount_change", obj.pk),
            "licence_url": _admin_url("billing_license_change", overview.license.pk) if overview.license else None,
            "change_plan_url": (
                _admin_url("billing_license_change_plan", overview.license.pk)
                if overview.license and self._can(request, Capability.MANAGE_BILLING)
                else None
            ),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/usage/usageaccount/overview.html", context)


def _admin_url(name: str, pk: int) -> str | None:
    try:
        return reverse(f"admin:{name}", args=[pk])
    except NoReverseMatch:  # that admin page isn't registered
        return None
