"""The product manager's admin: packaging, governance buttons, the entitlement matrix and the pricing preview.

Thin by design: forms parse, `catalog.services` writes (and audits), `catalog.selectors`
reads. Published items open read-only (Django's view-only change page); governance
moves happen through the buttons on the change page or the list actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from accounts.admin_base import TenantScopedAdmin, TenantScopedInline, tenant_action
from accounts.models import Capability
from catalog import pricing, services
from catalog.admin_display import (
    EMPTY,
    bullet_list,
    local_date,
    money_cell,
    scenario_list,
    term_rule_lines,
    volume_rule_lines,
)
from catalog.admin_review import REVIEWED_TRANSITIONS, bulk_review, review_view
from catalog.errors import TierwiseError
from catalog.forms import (
    EntitlementInlineFormSet,
    LinesField,
    PriceForm,
    PriceInlineFormSet,
    ScenariosField,
    TermRulesField,
    VolumeRulesField,
)
from catalog.models import (
    AddOn,
    Bundle,
    DiscountPolicy,
    Enforcement,
    Entitlement,
    Feature,
    GovernanceState,
    Governed,
    Meter,
    Price,
    Product,
    Tier,
)
from catalog.templatetags.catalog_money import grant, money, percent
from catalog.validation import PriceDraft


class CatalogPermissions:
    view_capability = Capability.VIEW
    edit_capability = Capability.EDIT_CATALOG


class CatalogAdminMedia:
    """The catalog stylesheet on pages that use Django's own templates (money columns, badges)."""

    class Media:
        css = {"all": ["catalog/admin.css"]}


# --- Plain (ungoverned) building blocks -----------------------------------------------------


@admin.register(Product)
class ProductAdmin(CatalogPermissions, TenantScopedAdmin):
    list_display = ["name", "key"]
    search_fields = ["name", "key"]
    fields = ["key", "name", "description"]


@admin.register(Feature)
class FeatureAdmin(CatalogPermissions, TenantScopedAdmin):
    list_display = ["name", "key", "kind", "unit", "product", "sort_order"]
    list_filter = ["kind", "product"]
    search_fields = ["name", "key"]
    list_editable = ["sort_order"]
    fields = ["product", "key", "name", "kind", "unit", "description", "sort_order"]


@admin.register(Meter)
class MeterAdmin(CatalogPermissions, TenantScopedAdmin):
    list_display = ["name", "key", "event_name", "aggregation", "property", "window", "window_days", "feature"]
    list_filter = ["aggregation", "window", "feature"]
    search_fields = ["name", "key", "event_name"]
    fields = ["key", "name", "feature", "event_name", "aggregation", "property", "window", "window_days"]


# --- Inlines --------------------------------------------------------------------------------


class DraftOnlyInline(CatalogPermissions, TenantScopedInline):
    """Rows of a tier/add-on: editable while the parent is a draft, read-only after.

    Read-only rows swap raw fields for readable ones (`readonly_displays`: field -> display method).
    """

    readonly_displays: dict[str, str] = {}

    def _parent_editable(self, obj: Any) -> bool:
        return obj is None or obj.is_editable

    def _read_only(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fields(self, request: HttpRequest, obj: Any = None):
        fields = list(super().get_fields(request, obj))
        if not self._read_only(request, obj):
            return fields
        shown = [self.readonly_displays.get(name, name) for name in fields]
        return [name for name in shown if name]  # a display of "" hides the raw field

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self._read_only(request, obj):
            readonly += [name for name in self.readonly_displays.values() if name and name not in readonly]
        return readonly

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_editable(obj) and super().has_delete_permission(request, obj)


class PriceInline(DraftOnlyInline):
    model = Price
    form = PriceForm
    formset = PriceInlineFormSet
    fk_name = None
    fields = ["interval", "amount", "per_seat", "shown_as"]  # the currency is always the tier's/add-on's
    readonly_fields = ["shown_as"]
    extra = 0
    max_num = 2
    verbose_name_plural = "prices (in the currency's units, e.g. 29.00)"
    readonly_displays = {"amount": ""}  # read-only: "Shown as" says it in money, the minor units add nothing

    @admin.display(description="Shown as")
    def shown_as(self, obj: Price) -> str:
        if obj.pk is None:
            return "—"
        return f"{money(obj.amount, obj.currency)} / {'seat / ' if obj.per_seat else ''}{obj.interval}"


class TierPriceInline(PriceInline):
    fk_name = "tier"


class AddOnPriceInline(PriceInline):
    fk_name = "addon"


class EntitlementInline(DraftOnlyInline):
    model = Entitlement
    formset = EntitlementInlineFormSet
    fields = ["feature", "enabled", "limit", "enforcement", "soft_limit_percent", "overage_note"]
    extra = 0
    readonly_displays = {"limit": "limit_shown"}

    @admin.display(description="Limit")
    def limit_shown(self, obj: Entitlement) -> str:
        if not obj.enabled:
            return EMPTY
        if obj.feature.kind == "boolean":
            return "included"
        return grant(obj.limit, obj.feature.unit)


class TierEntitlementInline(EntitlementInline):
    fk_name = "tier"


class AddOnEntitlementInline(EntitlementInline):
    fk_name = "addon"


# --- Governed items -------------------------------------------------------------------------

ACTION_LABELS = {
    "submit": "Submit for approval",
    "approve": "Review and approve",
    "publish": "Review and publish",
    "return_to_draft": "Return to draft",
    "revise": "Revise (new draft version)",
    "retire": "Retire",
}


def available_transitions(obj: Governed) -> list[str]:
    if obj.state == GovernanceState.DRAFT:
        return ["submit"]
    if obj.state == GovernanceState.AWAITING_APPROVAL:
        return ["publish", "return_to_draft"] if obj.is_approved else ["approve", "return_to_draft"]
    if obj.state == GovernanceState.PUBLISHED:
        return ["revise", "retire"]
    return []


class GovernedAdmin(CatalogPermissions, TenantScopedAdmin):
    """Drafts edit through services; anything past draft opens read-only; transitions are buttons.

    Read-only pages show JSON fields the way people wrote them (`readonly_displays`: field -> display
    method), not as the stored JSON.
    """

    readonly_displays: dict[str, str] = {}

    audit_admin_edits = False  # catalog.services audits every write with before/after
    change_form_template = "admin/catalog/governed_change_form.html"
    change_list_template = "admin/catalog/governed_change_list.html"
    actions = [
        "submit_selected",
        "approve_selected",
        "publish_selected",
        "return_selected",
        "revise_selected",
        "retire_selected",
    ]
    list_filter = ["state"]
    search_fields = ["name", "key"]

    def _read_only(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._read_only(request, obj) or not self.readonly_displays:
            return fieldsets
        return [
            (name, {**options, "fields": [self.readonly_displays.get(f, f) for f in options["fields"]]})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self._read_only(request, obj):
            # Both names: the raw form field must not be built, the display is shown in its place.
            readonly += [n for pair in self.readonly_displays.items() for n in pair if n not in readonly]
        return readonly

    # Permissions: the change page of anything past draft is Django's read-only view.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False  # never-published drafts only: published history stays
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deleting goes through the audited, draft-only path
        if not self._can(request, Capability.EDIT_CATALOG):
            return {}
        return actions

    @admin.display(description="State", ordering="state")
    def status(self, obj: Governed) -> str:
        css = "approved" if obj.is_approved else obj.state
        return format_html('<span class="tw-state tw-state-{}">{}</span>', css, obj.status_label)

    @admin.display(description="Version", ordering="version")
    def version_label(self, obj: Governed) -> str:
        return f"v{obj.version}"

    # --- Saving drafts through services ---
    def save_model(self, request: HttpRequest, obj: Governed, form: Any, change: bool) -> None:
        m2m = {
            name: list(form.cleaned_data[name])
            for name in services.M2M_FIELDS.get(type(obj), ())
            if name in form.cleaned_data
        }
        services.save_draft(request.tenant, obj=obj, actor=request.user, m2m=m2m)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        owner = form.instance
        # The admin's change message reads these; the audit log (written by services) is the real record.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is Price:
            drafts = []
            for f in formset.forms:
                data = getattr(f, "cleaned_data", None)
                if not data or data.get("DELETE") or not data.get("interval"):
                    continue
                drafts.append(
                    PriceDraft(
                        data["interval"],
                        int(data["amount"]),
                        data.get("currency") or owner.currency,
                        bool(data.get("per_seat")),
                    )
                )
            if formset.has_changed():
                services.replace_prices(request.tenant, owner=owner, prices=drafts, actor=request.user)
            return
        if formset.model is Entitlement:
            for f in formset.forms:
                data = getattr(f, "cleaned_data", None)
                if not data or not f.has_changed() and not data.get("DELETE"):
                    continue
                if data.get("DELETE"):
                    if f.instance.pk:
                        services.remove_entitlement(request.tenant, entitlement=f.instance, actor=request.user)
                    continue
                services.set_entitlement(
                    request.tenant,
                    owner=owner,
                    feature=data["feature"],
                    actor=request.user,
                    grant=services.Grant(
                        enabled=data.get("enabled", False),
                        limit=data.get("limit"),
                        enforcement=data.get("enforcement") or Enforcement.HARD,
                        soft_limit_percent=data.get("soft_limit_percent") or 80,
                        overage_note=data.get("overage_note") or "",
                    ),
                )
            return
        super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Governed) -> None:
        services.delete_draft(request.tenant, obj=obj, actor=request.user)

    # --- Governance: buttons and list actions ---
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/governance/<str:transition>/review/",
                self.admin_site.admin_view(self.review_view),
                name="{}_{}_review".format(*info),
            ),
            path(
                "<int:object_id>/governance/<str:transition>/",
                self.admin_site.admin_view(self.transition_view),
                name="{}_{}_transition".format(*info),
            ),
            *super().get_urls(),
        ]

    def _run(self, request: HttpRequest, obj: Governed, transition: str) -> Governed | None:
        fn: Callable[..., services.TransitionResult] = services.TRANSITIONS[transition]
        try:
            kwargs: dict[str, Any] = {}
            if transition in ("return_to_draft", "retire"):
                kwargs["reason"] = (request.POST.get("reason") or "")[:200]
            if transition == "approve":
                kwargs["comment"] = request.POST.get("comment") or ""
            result = fn(request.tenant, obj=obj, actor=request.user, **kwargs)
        except TierwiseError as exc:
            self.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)
            for issue in (exc.details or {}).get("issues", [])[1:] if isinstance(exc.details, dict) else []:
                self.message_user(request, issue, level=messages.ERROR)
            return None
        done = {
            "submit": "submitted for approval",
            "approve": "approved",
            "publish": "published",
            "return_to_draft": "returned to draft",
            "revise": "revised: a new draft version was created",
            "retire": "retired",
        }[transition]
        self.message_user(request, f"{result.obj} v{result.obj.version}: {done}.", level=messages.SUCCESS)
        for old in result.retired:
            self.message_user(request, f"{old} v{old.version} was retired: v{result.obj.version} replaces it.")
        for warning in result.warnings:
            self.message_user(request, warning, level=messages.WARNING)
        return result.obj

    def transition_view(self, request: HttpRequest, object_id: int, transition: str) -> HttpResponse:
        return require_POST(self._transition_view)(request, object_id, transition)

    def _transition_view(self, request: HttpRequest, object_id: int, transition: str) -> HttpResponse:
        if transition not in services.TRANSITIONS:
            raise Http404("No such transition.")
        obj = self.get_queryset(request).filter(pk=object_id).first()  # tenant-scoped: foreign ids are 404
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such item.")
        if transition in REVIEWED_TRANSITIONS and request.POST.get("confirmed") != "1":
            # Approve and Publish only after the review page (diff and impact) was shown.
            info = self.opts.app_label, self.opts.model_name
            return HttpResponseRedirect(reverse("admin:{}_{}_review".format(*info), args=[obj.pk, transition]))
        result = self._run(request, obj, transition)
        target = result if result is not None else obj
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[target.pk])
        )

    def review_view(self, request: HttpRequest, object_id: int, transition: str) -> HttpResponse:
        return review_view(self, request, object_id, transition)

    def _bulk(self, request: HttpRequest, queryset, transition: str) -> HttpResponse | None:
        if transition in REVIEWED_TRANSITIONS and request.POST.get("confirmed") != "1":
            return bulk_review(self, request, queryset, transition)  # confirm first, with the diffs
        for obj in queryset:
            self._run(request, obj, transition)
        return None

    @tenant_action(capability=Capability.EDIT_CATALOG, description="Submit selected for approval")
    def submit_selected(self, request, queryset):
        self._bulk(request, queryset, "submit")

    @tenant_action(capability=Capability.APPROVE_CATALOG, description="Approve selected (four eyes: not your own)")
    def approve_selected(self, request, queryset):
        return self._bulk(request, queryset, "approve")

    @tenant_action(capability=Capability.EDIT_CATALOG, description="Publish selected (approved only)")
    def publish_selected(self, request, queryset):
        return self._bulk(request, queryset, "publish")

    @tenant_action(capability=Capability.EDIT_CATALOG, description="Return selected to draft")
    def return_selected(self, request, queryset):
        self._bulk(request, queryset, "return_to_draft")

    @tenant_action(capability=Capability.EDIT_CATALOG, description="Revise selected (new draft versions)")
    def revise_selected(self, request, queryset):
        self._bulk(request, queryset, "revise")

    @tenant_action(capability=Capability.EDIT_CATALOG, description="Retire selected")
    def retire_selected(self, request, queryset):
        self._bulk(request, queryset, "retire")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        if obj is not None and getattr(request, "tenant", None) is not None:
            extra_context["governance"] = self.governance_context(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def governance_context(self, request: HttpRequest, obj: Governed) -> dict[str, Any]:
        tenant = request.tenant
        membership = getattr(request, "membership", None)
        issues = []
        if obj.state in (GovernanceState.DRAFT, GovernanceState.AWAITING_APPROVAL):
            issues = [m for _, m in services.readiness_issues(tenant, obj, for_publish=obj.is_approved)]
        refusal = None
        if obj.state == GovernanceState.AWAITING_APPROVAL and not obj.is_approved:
            refusal = services.four_eyes_refusal(obj, request.user, membership)
        change_url = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        versions = [
            {"obj": v, "url": reverse(change_url, args=[v.pk])}
            for v in type(obj).objects.for_tenant(tenant).filter(key=obj.key).order_by("-version")
        ]
        # Revising while a newer draft is open is refused by the service: say so instead of offering it.
        open_version = next(
            (
                v["obj"]
                for v in versions
                if v["obj"].pk != obj.pk
                and v["obj"].state in (GovernanceState.DRAFT, GovernanceState.AWAITING_APPROVAL)
            ),
            None,
        )
        buttons = []
        for name in available_transitions(obj):
            disabled = (
                (name == "approve" and refusal is not None)
                or (name in ("submit", "approve", "publish") and bool(issues))
                or (name == "revise" and open_version is not None)
            )
            buttons.append(
                {
                    "name": name,
                    "label": ACTION_LABELS[name],
                    "disabled": disabled,
                    "url": reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_transition", args=[obj.pk, name]
                    ),
                    "review_url": reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_review", args=[obj.pk, name]
                    )
                    if name in REVIEWED_TRANSITIONS
                    else "",
                    "danger": name == "retire",
                }
            )
        can_act = self._can(request, Capability.EDIT_CATALOG)
        return {
            "obj": obj,
            "issues": issues,
            "refusal": refusal,
            "buttons": buttons if can_act else [],
            "versions": versions,
            "open_version": open_version,
            "opts": self.opts,
        }


class TierForm(forms.ModelForm):
    outcomes = LinesField(
        help_text="Benefits written as outcomes, one per line: 'Ship weekly without firefighting', not 'CI minutes'."
    )

    class Meta:
        model = Tier
        fields = list(services.EDITABLE_FIELDS[Tier])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        currency = data.get("currency")
        if self.instance.pk and currency:
            mismatched = self.instance.prices.exclude(currency=currency)
            if mismatched.exists() and "currency" in self.changed_data:
                self.add_error(
                    "currency",
                    f"The prices of this tier are in {mismatched.first().currency}; "
                    "change them in the same save or keep the currency.",
                )
        return data


@admin.register(Tier)
class TierAdmin(GovernedAdmin):
    form = TierForm
    # Key, anchor and the free flag are on the page and in the filters; the list keeps what tells tiers apart.
    list_display = ["tier_version", "rank", "status", "monthly_money", "annual_money", "public"]
    list_filter = ["state", "product", "is_public", "is_free"]
    readonly_displays = {"outcomes": "outcome_list"}
    ordering = ["product", "rank", "key", "-version"]
    inlines = [TierPriceInline, TierEntitlementInline]
    fieldsets = [
        (None, {"fields": ["product", "key", "name", "rank", "currency"]}),
        ("How customers see it", {"fields": ["tagline", "outcomes", "who_for", "is_anchor"]}),
        ("Availability", {"fields": ["is_public", "is_free", "default_trial_days"]}),
    ]
    change_list_template = "admin/catalog/tier_change_list.html"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("product").prefetch_related("prices")

    def _price(self, obj: Tier, interval: str) -> str:
        price = next((p for p in obj.prices.all() if p.interval == interval), None)
        if price is None:
            return EMPTY
        return money_cell(price.amount, price.currency, title="per seat" if price.per_seat else "flat")

    @admin.display(description="Monthly")
    def monthly_money(self, obj: Tier) -> str:
        return self._price(obj, "month")

    @admin.display(description="Annual")
    def annual_money(self, obj: Tier) -> str:
        return self._price(obj, "year")

    @admin.display(description="Tier", ordering="key")
    def tier_version(self, obj: Tier) -> str:
        return f"{obj.name} v{obj.version}"

    @admin.display(description="Public", boolean=True, ordering="is_public")
    def public(self, obj: Tier) -> bool:
        return obj.is_public

    @admin.display(description="Outcomes")
    def outcome_list(self, obj: Tier) -> str:
        return bullet_list(obj.outcomes)

    def get_urls(self):
        return [
            path("matrix/", self.admin_site.admin_view(self.matrix_view), name="catalog_tier_matrix"),
            path("preview/", self.admin_site.admin_view(self.preview_view), name="catalog_tier_preview"),
            *super().get_urls(),
        ]

    # --- Entitlement matrix ---
    def matrix_view(self, request: HttpRequest) -> HttpResponse:
        from catalog.admin_views import entitlement_matrix_view

        return entitlement_matrix_view(self, request)

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        from catalog.admin_views import pricing_preview_view

        return pricing_preview_view(self, request)


class AddOnForm(forms.ModelForm):
    class Meta:
        model = AddOn
        fields = list(services.EDITABLE_FIELDS[AddOn])
        widgets = {"compatible_tiers": forms.CheckboxSelectMultiple}
        help_texts = {
            "compatible_tiers": "The tiers this add-on is sold with (by tier, so new versions keep it). "
            "Tick none to sell it with every tier."
        }


@admin.register(AddOn)
class AddOnAdmin(GovernedAdmin):
    form = AddOnForm
    list_display = ["name", "key", "version_label", "status", "monthly_money", "tiers"]
    list_filter = ["state", "product"]
    inlines = [AddOnPriceInline, AddOnEntitlementInline]
    fields = ["product", "key", "name", "description", "currency", "compatible_tiers"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("prices", "compatible_tiers")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "compatible_tiers" and getattr(request, "tenant", None) is not None:
            kwargs["queryset"] = (
                Tier.objects.for_tenant(request.tenant)
                .exclude(state=GovernanceState.RETIRED)
                .order_by("rank", "version")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="Monthly")
    def monthly_money(self, obj: AddOn) -> str:
        price = next((p for p in obj.prices.all() if p.interval == "month"), None)
        return money_cell(price.amount, price.currency) if price else EMPTY

    @admin.display(description="Offered with")
    def tiers(self, obj: AddOn) -> str:
        return ", ".join(sorted({t.name for t in obj.compatible_tiers.all()})) or "Every tier"


class BundleForm(forms.ModelForm):
    scenarios = ScenariosField()

    class Meta:
        model = Bundle
        fields = list(services.EDITABLE_FIELDS[Bundle])
        widgets = {"addons": forms.CheckboxSelectMultiple}


@admin.register(Bundle)
class BundleAdmin(GovernedAdmin):
    form = BundleForm
    list_display = ["name", "key", "version_label", "status", "tier", "audience_label"]
    list_filter = ["state", "audience_kind", "tier"]
    fields = ["key", "name", "tier", "addons", "audience_kind", "audience", "description", "scenarios"]
    readonly_displays = {"scenarios": "scenario_list"}

    @admin.display(description="For", ordering="audience")
    def audience_label(self, obj: Bundle) -> str:
        return f"{obj.audience} ({obj.get_audience_kind_display().lower()})" if obj.audience else EMPTY

    @admin.display(description="Scenarios")
    def scenario_list(self, obj: Bundle) -> str:
        return scenario_list(obj.scenarios)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("tier")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tier" and getattr(request, "tenant", None) is not None:
            kwargs["queryset"] = (
                Tier.objects.for_tenant(request.tenant)
                .exclude(state=GovernanceState.RETIRED)
                .order_by("rank", "version")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "addons" and getattr(request, "tenant", None) is not None:
            kwargs["queryset"] = AddOn.objects.for_tenant(request.tenant).exclude(state=GovernanceState.RETIRED)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class DiscountPolicyForm(forms.ModelForm):
    term_rules = TermRulesField()
    volume_rules = VolumeRulesField()

    class Meta:
        model = DiscountPolicy
        fields = list(services.EDITABLE_FIELDS[DiscountPolicy])


SAMPLE_SEATS = (1, 10, 50, 200, 1000)


@admin.register(DiscountPolicy)
class DiscountPolicyAdmin(GovernedAdmin):
    form = DiscountPolicyForm
    list_display = ["name", "key", "version_label", "status", "combination", "cap", "loyalty"]
    readonly_displays = {"term_rules": "term_rule_list", "volume_rules": "volume_rule_list"}

    @admin.display(description="Cap", ordering="cap_percent")
    def cap(self, obj: DiscountPolicy) -> str:
        return percent(obj.cap_percent)

    @admin.display(description="Loyalty", ordering="loyalty_percent")
    def loyalty(self, obj: DiscountPolicy) -> str:
        return percent(obj.loyalty_percent)

    @admin.display(description="Term rules")
    def term_rule_list(self, obj: DiscountPolicy) -> str:
        return bullet_list(term_rule_lines(obj.term_rules))

    @admin.display(description="Volume rules")
    def volume_rule_list(self, obj: DiscountPolicy) -> str:
        return bullet_list(volume_rule_lines(obj.volume_rules))

    fields = [
        "key",
        "name",
        "term_rules",
        "volume_rules",
        "combination",
        "cap_percent",
        "loyalty_percent",
        "exception_approver_role",
    ]

    def governance_context(self, request: HttpRequest, obj: Governed) -> dict[str, Any]:
        context = super().governance_context(request, obj)
        try:
            rows = []
            for years in (1, 2, 3):
                cells = [pricing.discount_for(obj, term_years=years, seats=seats) for seats in SAMPLE_SEATS]
                rows.append({"years": years, "cells": cells})
            context["discount_table"] = {"seats": SAMPLE_SEATS, "rows": rows}
        except ValueError as exc:
            context["issues"] = [*context["issues"], str(exc)]
        return context


@admin.register(Price)
class PriceAdmin(CatalogAdminMedia, CatalogPermissions, TenantScopedAdmin):
    """Every price version ever sold, read-only: prices change by revising their tier or add-on."""

    # The key and the price's own name repeat what "For" and "Interval" say; they stay searchable.
    list_display = ["owner", "interval", "amount_money", "per_seat", "status", "published", "retired"]
    list_filter = ["state", "interval"]
    search_fields = ["key", "tier__name", "addon__name"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("tier", "addon")

    @admin.display(description="For", ordering="key")
    def owner(self, obj: Price) -> str:
        item = obj.tier or obj.addon
        return f"{item.name if item else obj.key} v{obj.version}"

    @admin.display(description="Amount", ordering="amount")
    def amount_money(self, obj: Price) -> str:
        return money_cell(obj.amount, obj.currency)

    @admin.display(description="State", ordering="state")
    def status(self, obj: Price) -> str:
        return format_html('<span class="tw-state tw-state-{}">{}</span>', obj.state, obj.get_state_display())

    @admin.display(description="Published", ordering="published_at")
    def published(self, obj: Price) -> str:
        return local_date(obj.published_at)

    @admin.display(description="Retired", ordering="retired_at")
    def retired(self, obj: Price) -> str:
        return local_date(obj.retired_at)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
