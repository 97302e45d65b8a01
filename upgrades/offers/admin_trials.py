"""Staff pages of trials (list, one trial with its early wins, "Start a trial") and of feedback (read-only).
Thin: start_trial (upgrades.offers.services.trials) decides whether a trial may start."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse

from accounts.admin_base import TenantScopedAdmin
from accounts.models import Capability, CustomerAccount
from upgrades.offers import admin_views
from upgrades.offers.admin_common import int_or_raw, object_or_404, page, run
from upgrades.offers.models import Feedback, Trial
from upgrades.offers.services.trials import start_trial

DETAIL = "admin/upgrades/trial/detail.html"
START = "admin/upgrades/trial/start.html"


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Trial)
class TrialAdmin(ReadOnly, TenantScopedAdmin):
    edit_capability = Capability.REVIEW_OFFERS
    list_display = ("id", "account", "target_key", "state", "starts_at", "ends_at", "wins_count", "source")
    list_filter = ("state", "target_kind", "source")
    list_select_related = ("account",)
    search_fields = ("account__external_id", "account__name", "target_key")

    @admin.display(description="Early wins")
    def wins_count(self, obj: Trial) -> int:
        return obj.wins.count()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra = {"can_start_trial": self._can(request, Capability.REVIEW_OFFERS), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name=f"{info[0]}_{info[1]}_start"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        trial = object_or_404(self, request, object_id)
        if not self.has_view_permission(request, trial):
            raise PermissionDenied
        return page(self, request, DETAIL, title=str(trial), original=trial, view=admin_views.trial_view(trial))

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self._can(request, Capability.REVIEW_OFFERS):
            raise PermissionDenied
        tenant = request.tenant
        accounts = CustomerAccount.objects.for_tenant(tenant).order_by("name")
        values = {"account": request.GET.get("account", ""), "target_kind": request.GET.get("target_kind", "tier"),
                  "target_key": request.GET.get("target_key", ""), "days": ""}  # fmt: skip
        if request.method == "POST":
            values = {name: (request.POST.get(name) or "").strip() for name in values}
            account = accounts.filter(pk=values["account"]).first() if values["account"].isdigit() else None
            days = int_or_raw(values["days"], 0) or None
            if account is None:
                messages.error(request, "Choose one of your accounts.")
            elif values["target_kind"] not in ("tier", "addon") or not values["target_key"]:
                messages.error(request, "Name the tier or add-on to try.")
            elif days is not None and not isinstance(days, int):
                messages.error(request, "Days: a whole number (or leave it empty for the settings' trial length).")
            else:
                trial = run(
                    request,
                    lambda: start_trial(
                        tenant,
                        account=account,
                        target_kind=values["target_kind"],
                        target_key=values["target_key"],
                        actor=request.user,
                        source="csm",
                        days=days,
                    ),  # fmt: skip
                    lambda t: f"Trial of {t.target_key} for {account.name} started; it ends on its own.",
                )
                if trial is not None:
                    return redirect(reverse("admin:upgrades_trial_change", args=[trial.pk]))
        return page(self, request, START, title="Start a trial", accounts=accounts[:500], values=values)


@admin.register(Feedback)
class FeedbackAdmin(ReadOnly, TenantScopedAdmin):
    list_display = ("created_at", "account", "kind", "reason_code", "text_short", "offer", "source")
    list_filter = ("kind", "reason_code", "source")
    list_select_related = ("account", "offer")
    search_fields = ("account__external_id", "account__name", "text")
    readonly_fields = ("account", "offer", "contact", "kind", "reason_code", "text", "satisfaction",
                       "perceived_value", "friction", "source", "created_at")  # fmt: skip

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        object_or_404(self, request, object_id)  # another tenant's id: 404, not the admin's redirect
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="What they said")
    def text_short(self, obj: Feedback) -> str:
        return obj.text[:120] + ("…" if len(obj.text) > 120 else "")
