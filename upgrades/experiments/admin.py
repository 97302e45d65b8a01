"""Staff pages of experiments: the list, a draft's form (with the minimum detectable effect before launch),
one experiment with its results (lift, confidence interval, verdict, sample-ratio warning) and the moves
(start, stop, roll out). Thin: upgrades.experiments.services decides; results.py computes."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse

from accounts.admin_base import TenantScopedAdmin
from accounts.models import Capability
from upgrades.experiments import results as experiment_results
from upgrades.experiments.models import Experiment, ExperimentAssignment
from upgrades.experiments.services import (
    create_experiment,
    roll_out_variant,
    start_experiment,
    stop_experiment,
    update_experiment,
)
from upgrades.offers.admin_common import object_or_404, page, run

DETAIL = "admin/upgrades/experiment/detail.html"
FORM = "admin/upgrades/experiment/form.html"
FIELDS = ("name", "hypothesis", "control_percent", "expected_monthly_accounts", "baseline_conversion_percent",
          "planned_days")  # fmt: skip
EXAMPLE = [{"key": "copy-b", "weight": 1, "template_variant": "b", "discount_variant": "", "anchor": True,
            "channel": "email"}]  # fmt: skip


def _values(experiment: Experiment | None) -> dict[str, str]:
    if experiment is None:
        return {"name": "", "hypothesis": "", "control_percent": "20", "expected_monthly_accounts": "400",
                "baseline_conversion_percent": "5", "planned_days": "30", "signal_kinds": "",
                "variants": json.dumps(EXAMPLE, indent=2)}  # fmt: skip
    out = {name: str(getattr(experiment, name)) for name in FIELDS}
    out["signal_kinds"] = ", ".join(experiment.signal_kinds or [])
    out["variants"] = json.dumps(experiment.variants, indent=2)
    return out


def _fields_from(post: Any) -> tuple[dict[str, Any], dict[str, str]]:
    values = {name: (post.get(name) or "").strip() for name in (*FIELDS, "signal_kinds", "variants")}
    fields: dict[str, Any] = {name: values[name] for name in FIELDS}
    fields["signal_kinds"] = [k.strip() for k in values["signal_kinds"].split(",") if k.strip()]
    try:
        fields["variants"] = json.loads(values["variants"] or "[]")
    except json.JSONDecodeError:
        fields["variants"] = None  # the service refuses it with the field and reason
    return fields, values


@admin.register(Experiment)
class ExperimentAdmin(TenantScopedAdmin):
    edit_capability: str = str(Capability.EDIT_RULES)
    view_capability: str = str(Capability.VIEW)
    list_display = ("name", "state", "control_percent", "started_at", "stopped_at", "winner")
    list_filter = ("state",)
    search_fields = ("name",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/edit/", view(self.edit_view), name=f"{info[0]}_{info[1]}_edit"),
            path("<path:object_id>/move/", view(self.move_view), name=f"{info[0]}_{info[1]}_move"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        values = _values(None)
        if request.method == "POST":
            fields, values = _fields_from(request.POST)
            made = run(request, lambda: create_experiment(request.tenant, actor=request.user, **fields),
                       lambda e: f"Draft '{e.name}' saved. Someone else starts it.")  # fmt: skip
            if made is not None:
                return redirect(reverse("admin:upgrades_experiment_change", args=[made.pk]))
        return page(self, request, FORM, title="New experiment", values=values, original=None)

    def edit_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        experiment = object_or_404(self, request, object_id)
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        values = _values(experiment)
        if request.method == "POST":
            fields, values = _fields_from(request.POST)
            done = run(request, lambda: update_experiment(request.tenant, experiment=experiment, actor=request.user,
                                                          **fields), "Draft saved.")  # fmt: skip
            if done is not None:
                return redirect(reverse("admin:upgrades_experiment_change", args=[experiment.pk]))
        return page(self, request, FORM, title=f"Edit {experiment.name}", values=values, original=experiment)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        experiment = object_or_404(self, request, object_id)
        if not self.has_view_permission(request, experiment):
            raise PermissionDenied
        window = 90 if request.GET.get("window") == "90" else 30
        outcome = experiment_results.results(request.tenant, experiment, window_days=window)
        recent = ExperimentAssignment.objects.for_tenant(request.tenant).filter(experiment=experiment)
        return page(self, request, DETAIL, title=str(experiment), original=experiment, window=window,
                    plan=experiment_results.plan(experiment), results=outcome,
                    currency=request.tenant.default_currency or "USD",
                    arms=list(outcome.arms.values()), can_edit=self.has_change_permission(request, experiment),
                    recent=recent.select_related("account").order_by("-assigned_at")[:20])  # fmt: skip

    def move_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        experiment = object_or_404(self, request, object_id)
        if request.method != "POST" or not self.has_change_permission(request, experiment):
            raise PermissionDenied
        move, tenant, user = request.POST.get("move", ""), request.tenant, request.user
        if move == "start":
            run(request, lambda: start_experiment(tenant, experiment=experiment, actor=user),
                "Started: accounts are assigned as their triggers fire.")  # fmt: skip
        elif move == "stop":
            run(request, lambda: stop_experiment(tenant, experiment=experiment, actor=user),
                "Stopped: no more accounts are assigned.")  # fmt: skip
        elif move == "roll_out":
            key = (request.POST.get("variant") or "").strip()
            run(request, lambda: roll_out_variant(tenant, experiment=experiment, variant_key=key, actor=user),
                f"'{key}' is now the default of every new offer.")  # fmt: skip
        else:
            messages.error(request, "Unknown action.")
        return redirect(reverse("admin:upgrades_experiment_change", args=[experiment.pk]))
