"""Billing in the tenant-scoped admin: licences (with grants, history, revoke/suspend/restore),
plan changes (read-only: state and every quote line), Stripe settings (keys write-only), webhook log.

Licences are never edited field by field here: every change goes through a service, so it is
validated, audited and announced.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.admin_base import TenantScopedAdmin, TenantScopedInline, tenant_action
from accounts.errors import TierwiseError
from accounts.models import Capability
from billing import selectors
from billing.admin_plan_change import ChangePlanAdminMixin
from billing.models import (
    License,
    LicenseChange,
    LicenseGrant,
    PlanChange,
    StripeAccount,
    StripeWebhookEvent,
)
from billing.services import licenses as license_services
from billing.services.stripe_accounts import PUBLISHABLE_KEY, save_stripe_keys
from catalog.admin_display import EMPTY, local_date, money_cell, money_text, parse_instant
from catalog.templatetags.catalog_money import percent


class BillingAdminMedia:
    """Money columns right-aligned and unbroken, compact lists at 1280 px with the side nav open."""

    class Media:
        css = {"all": ["billing/admin.css"]}


def money(amount: int | None, currency: str) -> str:
    """Integer minor units in the given currency, as text ('$1,234.50'); '—' for none."""
    return money_text(amount, currency)


def render_lines(lines: list[dict[str, Any]], currency: str, total: int | None = None) -> str:
    """Quote or invoice lines; periods are stored as ISO strings (UTC) and shown as dates in the tenant's zone."""
    shown = [
        {
            **line,
            "display_amount": money(line.get("amount"), currency),
            "period_start_at": parse_instant(line.get("period_start")),
            "period_end_at": parse_instant(line.get("period_end")),
        }
        for line in lines
    ]
    return render_to_string(
        "billing/admin/quote_lines.html",
        {"lines": shown, "currency": currency, "total": money(total, currency) if total is not None else None},
    )


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LicenseChangeInline(ReadOnlyMixin, TenantScopedInline):
    model = LicenseChange
    fk_name = "license"
    fields = [
        "effective_at",
        "change",
        "reason",
        "by",
        "reference",
        "mrr_before_money",
        "mrr_after_money",
        "stripe_invoice_id",
    ]
    readonly_fields = fields
    ordering = ["-effective_at", "-id"]
    verbose_name_plural = "Change history"

    @admin.display(description="Change")
    def change(self, obj: LicenseChange) -> str:
        return obj.kind_label

    @admin.display(description="By")
    def by(self, obj: LicenseChange) -> str:
        return obj.actor_label

    @admin.display(description="MRR before")
    def mrr_before_money(self, obj: LicenseChange) -> SafeString:
        return money_cell(obj.mrr_before, obj.currency)

    @admin.display(description="MRR after")
    def mrr_after_money(self, obj: LicenseChange) -> SafeString:
        return money_cell(obj.mrr_after, obj.currency)


class ReasonActionForm(ActionForm):
    reason = forms.CharField(
        required=False, max_length=200, label="Reason", help_text="Required for revoke, suspend and restore."
    )


@admin.register(License)
class LicenseAdmin(ChangePlanAdminMixin, BillingAdminMedia, TenantScopedAdmin):
    change_form_template = "billing/admin/license_change_form.html"
    # Seven short columns: fits beside the filters at 1280 px with the side nav open.
    list_display = ["account", "plan", "seats", "status", "mrr_money", "period_end"]
    list_filter = ["status", "interval", "cancel_at_period_end", "tier"]
    search_fields = ["account__name", "account__external_id", "stripe_subscription_id", "stripe_customer_id"]
    list_select_related = ["account", "tier"]
    inlines = [LicenseChangeInline]
    action_form = ReasonActionForm
    actions = ["revoke", "suspend", "restore"]
    view_capability = Capability.VIEW
    edit_capability = Capability.MANAGE_BILLING
    audit_admin_edits = False
    fields = [
        "account",
        "tier",
        "price",
        "addon_names",
        "seats",
        "interval",
        "status",
        "status_reason",
        "held_from_status",
        "held_at",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "term_years",
        "commitment_ends_at",
        "renewal_discount",
        "term_discounts",
        "mrr_money",
        "currency",
        "stripe_customer_id",
        "stripe_subscription_id",
        "stripe_schedule_id",
        "grants",
    ]
    readonly_fields = fields

    @admin.display(description="MRR", ordering="mrr")
    def mrr_money(self, obj: License) -> SafeString:
        return money_cell(obj.mrr, obj.currency)

    @admin.display(description="Renewal discount")
    def renewal_discount(self, obj: License) -> str:
        return percent(obj.renewal_discount_percent)

    @admin.display(description="Discount by year of the term")
    def term_discounts(self, obj: License) -> str:
        """A ramped term (billed by a Stripe subscription schedule), year by year; one discount throughout: —."""
        return ", ".join(f"year {i}: {percent(p)}" for i, p in enumerate(obj.term_percents or [], 1)) or EMPTY

    @admin.display(description="Plan", ordering="tier__rank")
    def plan(self, obj: License) -> str:
        return f"{obj.tier} · {obj.get_interval_display().lower()}"

    @admin.display(description="Period ends", ordering="current_period_end")
    def period_end(self, obj: License) -> SafeString:
        if obj.cancel_at_period_end:
            return format_html(
                '<span title="Cancels at the period end">Cancels {}</span>', local_date(obj.current_period_end)
            )
        return format_html("{}", local_date(obj.current_period_end))

    @admin.display(description="Add-ons")
    def addon_names(self, obj: License) -> str:
        return ", ".join(str(addon) for addon in obj.addons.all()) or EMPTY

    @admin.display(description="Grants (trials, CSM grants)")
    def grants(self, obj: License) -> str:
        rows = (
            LicenseGrant.objects.for_tenant(obj.tenant_id)
            .filter(account_id=obj.account_id)
            .select_related("tier", "addon")
            .order_by("-starts_at")
        )
        return render_to_string("billing/admin/grants.html", {"grants": rows})

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # licences come from sales, settlements and the demo seed, through services

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: history stays

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # read-only form; the actions below are the way to change a licence

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if not self._can(request, Capability.MANAGE_BILLING):
            return {}
        return actions

    def _hold_action(self, request: HttpRequest, queryset, service, verb: str) -> None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, f"Give a reason to {verb}.", level=messages.ERROR)
            return
        done = 0
        for license in queryset:
            try:
                service(request.tenant, license=license, actor=request.user, reason=reason)
                done += 1
            except TierwiseError as exc:
                self.message_user(request, f"{license.account}: {exc.message}", level=messages.WARNING)
        if done:
            self.message_user(
                request,
                f"{verb.capitalize()}d {done} licence(s)."
                if verb.endswith("e")
                else f"{verb.capitalize()}ed {done} licence(s).",
            )

    @tenant_action(capability=Capability.MANAGE_BILLING, description="Revoke selected licences (reversible)")
    def revoke(self, request: HttpRequest, queryset) -> None:
        self._hold_action(request, queryset, license_services.revoke_license, "revoke")

    @tenant_action(capability=Capability.MANAGE_BILLING, description="Suspend selected licences (reversible)")
    def suspend(self, request: HttpRequest, queryset) -> None:
        self._hold_action(request, queryset, license_services.suspend_license, "suspend")

    @tenant_action(capability=Capability.MANAGE_BILLING, description="Restore selected licences")
    def restore(self, request: HttpRequest, queryset) -> None:
        self._hold_action(request, queryset, license_services.restore_license, "restore")


@admin.register(LicenseGrant)
class LicenseGrantAdmin(BillingAdminMedia, ReadOnlyMixin, TenantScopedAdmin):
    list_display = ["account", "grant_kind", "item", "starts", "ends", "ended", "reference"]
    list_filter = ["kind"]
    search_fields = ["account__name", "account__external_id", "reference"]
    list_select_related = ["account", "tier", "addon"]
    actions = ["end_now"]
    edit_capability = Capability.MANAGE_BILLING

    def get_actions(self, request: HttpRequest):
        return super().get_actions(request) if self._can(request, Capability.MANAGE_BILLING) else {}

    @admin.display(description="Kind", ordering="kind")
    def grant_kind(self, obj: LicenseGrant) -> str:
        return {"trial": "Trial", "csm_grant": "CSM grant"}.get(obj.kind, obj.get_kind_display())

    @admin.display(description="Tier / add-on")
    def item(self, obj: LicenseGrant) -> str:
        return str(obj.tier or obj.addon or EMPTY)

    @admin.display(description="Starts", ordering="starts_at")
    def starts(self, obj: LicenseGrant) -> str:
        return local_date(obj.starts_at)

    @admin.display(description="Ends", ordering="ends_at")
    def ends(self, obj: LicenseGrant) -> str:
        return local_date(obj.ends_at)

    @admin.display(description="Ended early", ordering="ended_at")
    def ended(self, obj: LicenseGrant) -> str:
        return local_date(obj.ended_at)

    @tenant_action(capability=Capability.MANAGE_BILLING, description="End selected grants now")
    def end_now(self, request: HttpRequest, queryset) -> None:
        for grant in queryset:
            license_services.end_grant(request.tenant, grant=grant, actor=request.user, reason="Ended by staff")
        self.message_user(request, f"Ended {queryset.count()} grant(s).")


@admin.register(PlanChange)
class PlanChangeAdmin(BillingAdminMedia, ReadOnlyMixin, TenantScopedAdmin):
    list_display = ["change", "account", "target", "state_short", "due_money", "created", "mismatch_flag"]
    list_filter = ["state", "kind"]
    search_fields = ["account__name", "account__external_id", "reference", "stripe_invoice_id"]
    list_select_related = ["account", "target_price", "target_price__tier"]
    fields = [
        "account",
        "license",
        "kind",
        "state",
        "failure_code",
        "failure_message",
        "from_price",
        "from_seats",
        "target_price",
        "target_seats",
        "proration_date",
        "quote",
        "effective_at",
        "quote_expires_at",
        "reference",
        "requested_by_label",
        "idempotency_key",
        "attempts",
        "payment_attempts",
        "stripe_subscription_id",
        "stripe_invoice_id",
        "settled_at",
        "settled_via",
        "charged",
        "mismatch",
        "estimate",
    ]
    readonly_fields = fields

    @admin.display(description="Due now", ordering="quote_amount_due")
    def due_money(self, obj: PlanChange) -> SafeString:
        return money_cell(obj.quote_amount_due, obj.currency)

    @admin.display(description="Change")
    def change(self, obj: PlanChange) -> str:
        return f"{obj.get_kind_display()} #{obj.pk}"

    @admin.display(description="To")
    def target(self, obj: PlanChange) -> str:
        price = obj.target_price
        return f"{price.tier or price.addon} · {price.get_interval_display().lower()} × {obj.target_seats}"

    @admin.display(description="State", ordering="state")
    def state_short(self, obj: PlanChange) -> SafeString:
        # The full label ("Settled: licence changed") is the tooltip; the column keeps the first word.
        label = obj.get_state_display()
        return format_html('<span title="{}">{}</span>', label, obj.state.capitalize())

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: PlanChange) -> str:
        return local_date(obj.created_at)

    @admin.display(description="Mismatch", boolean=True)
    def mismatch_flag(self, obj: PlanChange) -> bool:
        return bool(obj.charge_mismatch)

    @admin.display(description="Quote (every line, from Stripe's preview)")
    def quote(self, obj: PlanChange) -> str:
        return render_lines(obj.quote_lines, obj.currency, obj.quote_total)

    @admin.display(description="Settled invoice")
    def charged(self, obj: PlanChange) -> str:
        if not obj.charged_lines:
            return "—"
        return render_lines(obj.charged_lines, obj.currency, obj.charged_amount)

    @admin.display(description="Quote ≠ charge")
    def mismatch(self, obj: PlanChange) -> SafeString | str:
        """What differed between the quote and the settled invoice, in words and money."""
        diff = obj.charge_mismatch or {}
        if not diff:
            return "None: the settled invoice matched the quote." if obj.settled_at else EMPTY
        rows: list[tuple[str, str]] = []
        if "charged_amount" in diff:
            rows.append(("Quoted due now", money(diff.get("quoted_amount_due"), obj.currency)))
            rows.append(("Charged", money(diff.get("charged_amount"), obj.currency)))
            rows.append(("Difference", money(diff.get("difference"), obj.currency)))
        for key, label in (
            ("quoted_lines_not_billed", "Quoted lines not billed"),
            ("billed_lines_not_quoted", "Billed lines not quoted"),
        ):
            if diff.get(key):
                amounts = ", ".join(money(line[0], obj.currency) for line in diff[key] if line)
                rows.append((label, f"{len(diff[key])} ({amounts})"))
        return format_html(
            '<table class="billing-facts">{}</table>', format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description="Our own estimate")
    def estimate(self, obj: PlanChange) -> SafeString | str:
        """The local proration cross-check, summarised (the Stripe item list is kept for support, folded)."""
        estimate = obj.local_estimate or {}
        if not estimate:
            return EMPTY
        rows: list[tuple[str, str]] = []
        if "amount_due_now" in estimate:
            rows.append(("Due now", money(estimate["amount_due_now"], obj.currency)))
        if estimate.get("lines"):
            rows.append(("Lines", ", ".join(money(amount, obj.currency) for amount in estimate["lines"])))
        if "matches_stripe" in estimate:
            rows.append(("Matches Stripe's preview", "yes" if estimate["matches_stripe"] else "NO"))
        if "mrr_after" in estimate:
            rows.append(("MRR after", money(estimate["mrr_after"], obj.currency)))
        items = [change.as_dict() for change in selectors.plan_change_items(obj.tenant, obj)]
        return format_html(
            '<table class="billing-facts">{}</table>{}',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
            format_html(
                "<details><summary>Subscription items sent to Stripe ({})</summary><ul>{}</ul></details>",
                len(items),
                format_html_join(
                    "",
                    "<li><code>{}</code> × {}{}</li>",
                    (
                        (
                            item.get("price_id") or item.get("item_id") or "?",
                            item.get("quantity", ""),
                            " (removed)" if item.get("deleted") else "",
                        )
                        for item in items
                        if isinstance(item, dict)
                    ),
                ),
            )
            if items
            else "",
        )


class StripeSettingsForm(forms.ModelForm):
    """Keys are write-only: the fields never show the stored value, and an empty field keeps it."""

    secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="sk_live_… or sk_test_…; leave empty to keep the stored key.",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="whsec_…; leave empty to keep the stored secret.",
    )

    class Meta:
        model = StripeAccount
        fields = ["publishable_key", "downgrade_prorated_credit"]

    def clean_publishable_key(self) -> str:
        key = (self.cleaned_data.get("publishable_key") or "").strip()
        if key and not PUBLISHABLE_KEY.fullmatch(key):
            raise forms.ValidationError("A Stripe publishable key starts with pk_ (pk_live_… or pk_test_…).")
        return key

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not (cleaned.get("secret_key") and cleaned.get("webhook_secret")):
            raise forms.ValidationError("Give both the secret key and the webhook signing secret.")
        return cleaned


@admin.register(StripeAccount)
class StripeAccountAdmin(TenantScopedAdmin):
    form = StripeSettingsForm
    list_display = ["__str__", "secret_key_hint", "webhook_secret_hint", "downgrade_prorated_credit", "updated_at"]
    readonly_fields = ["secret_key_hint", "webhook_secret_hint", "webhook_url", "updated_at"]
    view_capability = Capability.MANAGE_TENANT
    edit_capability = Capability.MANAGE_TENANT
    audit_admin_edits = False  # the service audits, naming what changed and never the secrets

    def get_fields(self, request: HttpRequest, obj: Any = None):
        return ["secret_key", "webhook_secret", "publishable_key", "downgrade_prorated_credit", *self.readonly_fields]

    @admin.display(description="Webhook endpoint to give Stripe")
    def webhook_url(self, obj: StripeAccount) -> str:
        site = getattr(settings, "SITE_URL", "")
        return format_html("<code>{}/billing/stripe/webhook/{}/</code>", site, obj.tenant.slug)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        tenant = getattr(request, "tenant", None)
        return (
            super().has_add_permission(request, *args)
            and tenant is not None
            and not StripeAccount.objects.for_tenant(tenant).exists()
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: StripeAccount, form: Any, change: bool) -> None:
        tenant = obj.tenant if obj.tenant_id else self._tenant_for_write(request)
        saved = save_stripe_keys(
            tenant,
            actor=request.user,
            secret_key=form.cleaned_data.get("secret_key"),
            webhook_secret=form.cleaned_data.get("webhook_secret"),
            publishable_key=form.cleaned_data.get("publishable_key"),
            downgrade_prorated_credit=form.cleaned_data.get("downgrade_prorated_credit"),
        )
        obj.pk = saved.pk
        obj.tenant = tenant


@admin.register(StripeWebhookEvent)
class StripeWebhookEventAdmin(BillingAdminMedia, ReadOnlyMixin, TenantScopedAdmin):
    list_display = ["received_at", "event_type", "event_id", "object_id", "state", "deliveries", "attempts"]
    list_filter = ["state", "event_type"]
    search_fields = ["event_id", "object_id"]
    fields = [
        "event_id",
        "event_type",
        "object_id",
        "stripe_created",
        "state",
        "deliveries",
        "attempts",
        "error",
        "received_at",
        "processed_at",
        "next_attempt_at",  # the beat sweep's next try; `gave_up` (filter by state) once Stripe's 3 days are over
        "payload",
    ]
    readonly_fields = fields


__all__ = ["LicenseAdmin", "PlanChangeAdmin", "StripeAccountAdmin"]
