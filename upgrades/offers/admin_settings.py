"""Staff pages of offer settings: the versions, a form for the draft (no JSON typing), the value model and
discount variants in words, and the governance buttons (submit, approve with a comment, return, retire).
Thin: read the form, call upgrades.offers.services.settings, show what it said."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, QueryDict
from django.shortcuts import redirect
from django.urls import path, reverse

from accounts.admin_base import TenantScopedAdmin
from accounts.errors import InvalidInput, TierwiseError
from accounts.models import Capability, Tenant
from catalog.models import Meter
from catalog.money import format_money, parse_amount, to_major
from upgrades.offers.admin_common import int_or_raw, object_or_404, page
from upgrades.offers.models import OfferSettings, SettingsState
from upgrades.offers.services import settings as services
from upgrades.rules.models import SignalKind

FORM = "admin/upgrades/offersettings/form.html"
NUMBERS = {"expiry_days": 21, "trial_days": 14, "trial_window_days": 180, "similar_min_accounts": 5}
MONEY_FIELDS = ("hourly_cost", "amount", "cost_per_incident")
DRIVER_INPUTS = ("meter", "hours_per_unit", "hourly_cost", "amount", "probability_percent", "per_month",
                 "cost_per_incident", "label")  # fmt: skip
BLANK_ROWS = 2


def _currency(tenant: Tenant) -> str:
    return (getattr(tenant, "default_currency", "") or "USD").upper()


def _rows(post: QueryDict, prefix: str) -> list[str]:
    """The row numbers a repeated group posted, in order ('driver-0-kind', 'driver-3-kind' -> ['0', '3'])."""
    found = {key.split("-")[1] for key in post if key.startswith(f"{prefix}-") and key.count("-") >= 2}
    return sorted((n for n in found if n.isdigit()), key=int)


def settings_from_post(post: QueryDict, currency: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The fields a draft gets from the form, and the errors of amounts that could not be read."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {"name": (post.get("name") or "").strip()}
    for name, default in NUMBERS.items():
        fields[name] = int_or_raw(post.get(name), default)
    fields["requires_csm_review"] = post.get("requires_csm_review") == "on"
    fields["signal_kinds"] = post.getlist("signal_kinds")
    drivers = []
    for n in _rows(post, "driver"):
        kind = (post.get(f"driver-{n}-kind") or "").strip()
        if not kind:
            continue  # an empty row
        spec = services.DRIVER_FIELDS.get(kind, {})
        driver: dict[str, Any] = {"kind": kind}
        for name in (*spec, "label"):
            raw = (post.get(f"driver-{n}-{name}") or "").strip()
            if name in MONEY_FIELDS and raw:
                try:
                    driver[name] = parse_amount(raw, currency)
                except ValueError as exc:
                    errors.setdefault(f"value_model[{len(drivers)}].{name}", []).append(str(exc))
                    driver[name] = raw
            elif raw or name != "label":
                driver[name] = raw
        drivers.append(driver)
    fields["value_model"] = drivers
    variants = []
    for n in _rows(post, "variant"):
        key = (post.get(f"variant-{n}-key") or "").strip()
        if not key:
            continue
        variants.append({"key": key, "percent": (post.get(f"variant-{n}-percent") or "").strip(),
                         "explanation": (post.get(f"variant-{n}-explanation") or "").strip()})  # fmt: skip
    fields["discount_variants"] = variants
    return fields, errors


def _driver_rows(obj: OfferSettings, currency: str) -> list[dict[str, Any]]:
    rows = []
    for d in obj.value_model or []:
        row = {name: d.get(name, "") for name in DRIVER_INPUTS}
        for name in MONEY_FIELDS:
            if isinstance(d.get(name), int):
                row[name] = f"{to_major(d[name], currency):f}"
        rows.append({"kind": d.get("kind", ""), **row})
    return rows + [{"kind": ""} for _ in range(BLANK_ROWS)]


@admin.register(OfferSettings)
class OfferSettingsAdmin(TenantScopedAdmin):
    edit_capability = Capability.EDIT_CATALOG
    audit_admin_edits = False  # the services audit every write
    list_display = ("__str__", "state", "signal_list", "expiry_days", "requires_csm_review", "approved_by", "live_at")
    list_filter = ("state",)
    ordering = ("-version",)

    @admin.display(description="Signals that make offers")
    def signal_list(self, obj: OfferSettings) -> str:
        return ", ".join(SignalKind(k).label for k in obj.signal_kinds if k in SignalKind.values) or "none"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are retired, never deleted (offers point at them)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/transition/", view(self.transition_view), name=f"{info[0]}_{info[1]}_transition"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        open_version = services.open_draft(request.tenant)
        if open_version is not None:
            messages.info(request, f"{open_version} is already open; change it here.")
            return redirect(reverse("admin:upgrades_offersettings_change", args=[open_version.pk]))
        return self._form(request, None)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        obj = object_or_404(self, request, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return self._form(request, obj)

    def _form(self, request: HttpRequest, obj: OfferSettings | None) -> HttpResponse:
        tenant = request.tenant
        currency = _currency(tenant)
        error_message, errors = "", {}
        current = obj
        if request.method == "POST":
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
            fields, errors = settings_from_post(request.POST, currency)
            try:
                if errors:
                    raise InvalidInput("Some amounts could not be read.", details=errors)
                if obj is None:
                    obj = services.create_settings_draft(tenant, actor=request.user, **fields)
                    messages.success(request, f"{obj} saved as a draft.")
                else:
                    obj = services.update_settings(tenant, settings=obj, actor=request.user, **fields)
                    messages.success(request, f"{obj} saved.")
                return redirect(reverse("admin:upgrades_offersettings_change", args=[obj.pk]))
            except TierwiseError as exc:
                error_message = exc.message
                errors = exc.details if isinstance(exc.details, dict) else errors
                current = OfferSettings(tenant=tenant, version=obj.version if obj else 0)
                for name, value in fields.items():
                    setattr(current, name, value)
        if current is None:
            live = OfferSettings.objects.for_tenant(tenant).filter(state=SettingsState.LIVE).first()
            current = OfferSettings(tenant=tenant)
            if live is not None:
                for name in services.EDITABLE:
                    setattr(current, name, getattr(live, name))
        editable = (obj is None or obj.is_editable) and self.has_change_permission(request, obj)
        return page(
            self, request, FORM,
            title=str(obj) if obj else "New offer settings draft",
            original=obj,
            settings=current,
            editable=editable,
            error_message=error_message,
            errors=sorted(errors.items()) if isinstance(errors, dict) else [],
            signal_kinds=SignalKind.choices,
            driver_kinds=list(services.DRIVER_LABELS.items()),
            driver_rows=_driver_rows(current, currency),
            variant_rows=[*(current.discount_variants or []), *({} for _ in range(BLANK_ROWS))],
            meters=list(Meter.objects.for_tenant(tenant).order_by("key").values_list("key", "name")),
            drivers_in_words=[services.describe_driver(d, currency) for d in current.value_model or []
                              if isinstance(d, dict)],
            variants=services.describe_variants(tenant, current) if obj is not None else [],
            transitions=self._transitions(request, obj),
            currency=currency,
            example_cost=format_money(6000, currency),
        )  # fmt: skip

    def _transitions(self, request: HttpRequest, obj: OfferSettings | None) -> list[tuple[str, str, str]]:
        """(verb, label, why not) for the state's buttons; a refusal is shown next to a disabled button."""
        if obj is None or not (
            self.has_change_permission(request, obj) or self._can(request, Capability.APPROVE_CATALOG)
        ):
            return []
        by_state = {
            SettingsState.DRAFT: [("submit", "Submit for approval"), ("retire", "Discard draft")],
            SettingsState.AWAITING_APPROVAL: [("approve", "Approve and go live"),
                                              ("return_to_draft", "Return to draft")],
            SettingsState.LIVE: [("retire", "Retire")],
        }  # fmt: skip
        out = []
        for verb, label in by_state.get(SettingsState(obj.state), []):
            if verb == "approve":
                why = services.approval_refusal(request.tenant, obj, request.user) or ""
            else:
                why = "" if self.has_change_permission(request, obj) else "Needs the catalog editing permission."
            out.append((verb, label, why))
        return out

    def transition_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = object_or_404(self, request, object_id)
        verb = request.POST.get("transition", "")
        needed = Capability.APPROVE_CATALOG if verb == "approve" else Capability.EDIT_CATALOG
        if not self._can(request, needed):
            raise PermissionDenied
        service = services.TRANSITIONS.get(verb)
        if service is None:
            messages.error(request, "Unknown action.")
            return redirect(reverse("admin:upgrades_offersettings_change", args=[obj.pk]))
        kwargs: dict[str, Any] = {}
        if verb == "approve":
            kwargs["comment"] = request.POST.get("comment", "")
        elif verb in ("retire", "return_to_draft"):
            kwargs["reason"] = request.POST.get("reason", "")
        try:
            obj = service(request.tenant, settings=obj, actor=request.user, **kwargs)
            messages.success(request, f"{obj} is now {obj.get_state_display().lower()}.")
        except TierwiseError as exc:
            messages.error(request, exc.message)
        return redirect(reverse("admin:upgrades_offersettings_change", args=[obj.pk]))
