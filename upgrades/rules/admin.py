"""Staff pages of trigger rules (tenant-scoped): the rule builder, governance buttons, preview,
backtest and suggested rules; signals read-only but for Dismiss (with a reason); scores read-only.
Thin: parse, check, call a service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.admin_base import TenantScopedAdmin, tenant_action
from accounts.errors import TierwiseError
from accounts.models import Capability
from upgrades.rules import builder, insights, services
from upgrades.rules.conditions import ConditionError, parse_condition
from upgrades.rules.data import load_rule_catalog
from upgrades.rules.models import AccountScore, RuleState, Signal, SignalKind, TargetKind, TriggerRule
from upgrades.rules.services.lifecycle import MAX_REASON

FIELDS = ("key", "name", "description", "signal_kind", "target_kind", "target_key", "priority", "cooldown_days")
BUILDER = "admin/upgrades/triggerrule/builder.html"


def _int(raw: str, default: int) -> int | str:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else (raw or default)


def _rule_fields(post: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {name: (post.get(name) or "").strip() for name in FIELDS}
    fields["priority"] = _int(fields["priority"], 50)
    fields["cooldown_days"] = _int(fields["cooldown_days"], 14)
    fields["requires_csm_review"] = post.get("requires_csm_review") == "on"
    fields["condition"] = builder.tree_from_post(post)
    return fields


@admin.register(TriggerRule)
class TriggerRuleAdmin(TenantScopedAdmin):
    edit_capability = Capability.EDIT_RULES
    audit_admin_edits = False  # the services audit every write
    list_display = ("name", "key", "signal_kind", "state", "in_words", "priority", "cooldown_days")
    list_filter = ("state", "signal_kind")
    search_fields = ("name", "key")

    @admin.display(description="In plain words")
    def in_words(self, obj: TriggerRule) -> str:
        try:
            return parse_condition(obj.condition, load_rule_catalog(obj.tenant)).describe(load_rule_catalog(obj.tenant))
        except ConditionError as exc:
            return f"(invalid: {exc})"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rules are retired, never deleted (signals point at them)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/transition/", view(self.transition_view), name=f"{info[0]}_{info[1]}_transition"),
            path("preview/", view(self.preview_view), name=f"{info[0]}_{info[1]}_preview"),
            path("<path:object_id>/backtest/", view(self.backtest_view), name=f"{info[0]}_{info[1]}_backtest"),
            path("suggestions/", view(self.suggestions_view), name=f"{info[0]}_{info[1]}_suggestions"),
            *super().get_urls(),
        ]

    # --- the builder: add and change ---------------------------------------------------------

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._builder(request, None)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return self._builder(request, obj)

    def _builder(self, request: HttpRequest, obj: TriggerRule | None) -> HttpResponse:
        tenant = request.tenant
        errors: list[dict[str, str]] = []
        error_message = ""
        values: dict[str, Any] = {}
        if request.method == "POST":
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
            values = _rule_fields(request.POST)
            try:
                if obj is None:
                    obj = services.create_rule(tenant, actor=request.user, **values)
                    messages.success(request, f"Rule {obj.name} saved as a draft.")
                else:
                    values.pop("key", None)
                    obj = services.update_rule(tenant, rule=obj, actor=request.user, **values)
                    messages.success(request, f"Rule {obj.name} saved.")
                return redirect(reverse("admin:upgrades_triggerrule_change", args=[obj.pk]))
            except TierwiseError as exc:
                error_message = exc.message
                details = exc.details or {}
                errors = details.get("condition", []) if isinstance(details, dict) else []
        catalog = load_rule_catalog(tenant)
        condition = values.get("condition") or (obj.condition if obj else {"all": []})
        words = ""
        if obj is not None:
            try:
                words = parse_condition(obj.condition, catalog).describe(catalog)
            except ConditionError:
                words = ""
        current = obj or TriggerRule(tenant=tenant)
        for name, value in values.items():
            if name != "condition":
                setattr(current, name, value)
        editable = (obj is None or obj.is_editable) and self.has_change_permission(request, obj)
        context = {
            **self.admin_site.each_context(request),
            "title": obj.name if obj else "New trigger rule",
            "subtitle": None,
            "opts": self.opts,
            "original": obj,
            "rule": current,
            "editable": editable,
            "words": words,
            "errors": errors,
            "error_message": error_message,
            "condition": condition,
            "spec": builder.spec(catalog),
            "signal_kinds": SignalKind.choices,
            "target_kinds": TargetKind.choices,
            "transitions": self._transitions(request, obj),
            "has_view_permission": True,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, BUILDER, context)

    def _transitions(self, request: HttpRequest, obj: TriggerRule | None) -> list[tuple[str, str, str]]:
        """(verb, label, why not) for the state's buttons; a refusal is shown next to a disabled button."""
        if obj is None or not self.has_change_permission(request, obj):
            return []
        by_state = {
            RuleState.DRAFT: [("submit", "Submit for approval")],
            RuleState.AWAITING_APPROVAL: [("approve", "Approve and go live"), ("return_to_draft", "Return to draft")],
            RuleState.LIVE: [("retire", "Retire")],
        }
        out = []
        for verb, label in by_state.get(RuleState(obj.state), []):
            why = ""
            if verb == "approve":
                why = services.four_eyes_refusal(obj, request.user, getattr(request, "membership", None)) or ""
            out.append((verb, label, why))
        return out

    def transition_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        verb = request.POST.get("transition", "")
        service = services.TRANSITIONS.get(verb)
        if service is None:
            messages.error(request, "Unknown action.")
        else:
            try:
                obj = service(request.tenant, rule=obj, actor=request.user)
                messages.success(request, f"Rule {obj.name} is now {obj.get_state_display().lower()}.")
            except TierwiseError as exc:
                messages.error(request, exc.message)
        return redirect(reverse("admin:upgrades_triggerrule_change", args=[obj.pk]))

    # --- preview, backtest, suggestions ----------------------------------------------------------

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """htmx: the builder's current fields -> "matches N accounts now" and a sample with evidence."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        condition = builder.tree_from_post(request.POST)
        context: dict[str, Any] = {}
        try:
            context["preview"] = insights.preview_rule(request.tenant, condition=condition)
        except ConditionError as exc:
            context["errors"] = exc.errors
        return TemplateResponse(request, "admin/upgrades/triggerrule/preview.html", context)

    def backtest_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        days = request.GET.get("days", "30")
        days_n = min(max(int(days), 1), 90) if days.isdigit() else 30
        context = {
            **self.admin_site.each_context(request),
            "title": f"Backtest: {obj.name}",
            "subtitle": None,
            "opts": self.opts,
            "original": obj,
            "result": insights.backtest_rule(request.tenant, condition=obj.condition, days=days_n),
            "days": days_n,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/upgrades/triggerrule/backtest.html", context)

    def suggestions_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        suggestions, note = insights.suggest_rules(request.tenant)
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            index = request.POST.get("index", "")
            if index.isdigit() and int(index) < len(suggestions):
                s = suggestions[int(index)]
                c = s.condition
                key = f"suggested-{c['meter']}-{c['percent']}-{c['min_days']}of{c['days']}"
                try:
                    rule = services.create_rule(
                        request.tenant, actor=request.user, key=key[:63].replace("_", "-"), name=s.name[:200],
                        description=s.explanation, condition=s.condition, signal_kind=SignalKind.UPGRADE_OPPORTUNITY,
                    )  # fmt: skip
                    messages.success(request, f"Draft rule {rule.name} created: review it and submit it for approval.")
                    return redirect(reverse("admin:upgrades_triggerrule_change", args=[rule.pk]))
                except TierwiseError as exc:
                    messages.error(request, exc.message)
        context = {
            **self.admin_site.each_context(request),
            "title": "Suggested rules",
            "subtitle": None,
            "opts": self.opts,
            "suggestions": suggestions,
            "note": note,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/upgrades/triggerrule/suggestions.html", context)


@admin.register(Signal)
class SignalAdmin(TenantScopedAdmin):
    list_display = ("created_at", "account", "kind", "rule", "sentence", "state")
    list_filter = ("kind", "state")
    search_fields = ("account__external_id", "account__name")
    list_select_related = ("account", "rule")
    readonly_fields = ("account", "rule", "kind", "evidence", "state", "created_at", "priority", "target_kind",
                       "target_key", "requires_csm_review")  # fmt: skip
    exclude = ("dedup_key",)
    actions = ["dismiss_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "closed_at", "closed_by", "closed_reason", "reference")

    @admin.display(description="Evidence")
    def sentence(self, obj: Signal) -> str:
        return obj.evidence.get("sentence", "")

    @tenant_action(capability=Capability.REVIEW_OFFERS, description="Dismiss selected open signals")
    def dismiss_selected(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Asks for a reason first (an intermediate page), then dismisses each open signal through the service."""
        signals = list(queryset.select_related("account", "rule"))
        reason = (request.POST.get("reason") or "").strip()
        error = ""
        if request.POST.get("confirmed"):
            if not reason:
                error = "Say why these signals are not worth acting on."
            else:
                done, refused = 0, []
                for signal in signals:
                    try:
                        services.dismiss_signal(request.tenant, signal=signal, actor=request.user, reason=reason)
                        done += 1
                    except TierwiseError as exc:
                        refused.append(f"{signal.account.external_id}: {exc}")
                if done:
                    self.message_user(request, f"Dismissed {done} signal(s).", messages.SUCCESS)
                for line in refused:
                    self.message_user(request, line, messages.WARNING)
                return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Dismiss signals",
            "signals": signals,
            "selected": [s.pk for s in signals],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "reason": reason,
            "reason_max": MAX_REASON,
            "error": error,
            "cancel_url": reverse("admin:upgrades_signal_changelist"),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/upgrades/signal/dismiss.html", context)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccountScore)
class AccountScoreAdmin(TenantScopedAdmin):
    list_display = ("account", "readiness", "previous_readiness", "health", "previous_health", "flags", "computed_at")
    list_select_related = ("account",)
    search_fields = ("account__external_id", "account__name")
    readonly_fields = ("account", "readiness", "health", "churn_flags", "factors", "previous_readiness",
                       "previous_health", "previous_at", "computed_at")  # fmt: skip
    exclude = ("week_started_at",)

    @admin.display(description="Churn flags")
    def flags(self, obj: AccountScore) -> str:
        return "; ".join(obj.churn_flags)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
