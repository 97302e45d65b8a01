"""'Change plan' from a licence's admin page: pick price, seats, add-ons -> Stripe's quote, every line -> Confirm.

Thin: the quote and the confirmation are the billing services' (`quote_plan_change`,
`confirm_plan_change`); after Confirm the plan change's own admin page shows its state as it
settles. Only members holding MANAGE_BILLING see the button or reach the views.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.errors import TierwiseError
from accounts.models import Capability
from billing import selectors
from billing.models import GrantKind, License, PlanChangeState
from billing.services.licenses import start_grant
from billing.services.plan_changes import confirm_plan_change, quote_plan_change
from catalog.admin_display import money_text
from catalog.models import AddOn, GovernanceState, Price, Tier


def _addon_label(price: Price) -> str:
    names = sorted({t.name for t in price.addon.compatible_tiers.all()})
    sold_with = f" (with {', '.join(names)} only)" if names else ""
    return f"{price.addon.name} — {money_text(price.amount, price.currency)} / {price.interval}{sold_with}"


class ChangePlanForm(forms.Form):
    price = forms.ModelChoiceField(queryset=Price.objects.none(), label="Tier and interval")
    seats = forms.IntegerField(min_value=1, max_value=1_000_000)
    addons = forms.ModelMultipleChoiceField(
        queryset=Price.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="Add-ons"
    )

    def __init__(self, *args: Any, license: License, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        published = Price.objects.for_tenant(license.tenant).filter(
            state=GovernanceState.PUBLISHED, currency=license.currency
        )
        self.fields["price"].queryset = published.filter(tier__isnull=False).select_related("tier")
        self.fields["price"].label_from_instance = lambda p: (
            f"{p.tier.name} — {money_text(p.amount, p.currency)} / {p.interval}{' per seat' if p.per_seat else ''}"
        )
        self.fields["addons"].queryset = (
            published.filter(addon__isnull=False).select_related("addon").prefetch_related("addon__compatible_tiers")
        )
        self.fields["addons"].label_from_instance = _addon_label
        self.fields["addons"].help_text = "An add-on that names no tiers is sold with every tier."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        price, addons = data.get("price"), data.get("addons") or []
        if price is not None:
            wrong = [a for a in addons if a.interval != price.interval]
            if wrong:
                self.add_error("addons", f"Pick add-ons billed per {price.interval}, like the plan.")
        return data


class GrantForm(forms.Form):
    kind = forms.ChoiceField(choices=GrantKind.choices)
    tier = forms.ModelChoiceField(queryset=Tier.objects.none(), required=False)
    addon = forms.ModelChoiceField(queryset=AddOn.objects.none(), required=False, label="Add-on")
    days = forms.IntegerField(min_value=1, max_value=365, initial=14)
    reason = forms.CharField(max_length=300, required=False)

    def __init__(self, *args: Any, license: License, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.for_tenant(license.tenant).filter(state=GovernanceState.PUBLISHED)
        self.fields["addon"].queryset = AddOn.objects.for_tenant(license.tenant).filter(state=GovernanceState.PUBLISHED)


class ChangePlanAdminMixin:
    """Adds the 'Change plan' button and its two pages to LicenseAdmin."""

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name  # type: ignore[attr-defined]
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<path:object_id>/change-plan/", view(self.change_plan_view), name=f"{info[0]}_{info[1]}_change_plan"),
            path(
                "<path:object_id>/change-plan/<int:plan_change_id>/",
                view(self.change_plan_quote_view),
                name=f"{info[0]}_{info[1]}_change_plan_quote",
            ),
            path("<path:object_id>/grant/", view(self.grant_view), name=f"{info[0]}_{info[1]}_grant"),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def _licence_for_change(self, request: HttpRequest, object_id: str) -> License:
        if not self._can(request, Capability.MANAGE_BILLING):  # type: ignore[attr-defined]
            raise PermissionDenied
        obj = self.get_queryset(request).filter(pk__in=[unquote(object_id)] if object_id.isdigit() else []).first()  # type: ignore[attr-defined]
        if obj is None:
            raise PermissionDenied  # another tenant's licence or none: nothing to tell apart
        return obj

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None):
        extra = dict(extra_context or {})
        extra["can_change_plan"] = self._can(request, Capability.MANAGE_BILLING)  # type: ignore[attr-defined]
        return super().change_view(request, object_id, form_url, extra_context=extra)  # type: ignore[misc]

    def change_plan_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        license = self._licence_for_change(request, object_id)
        form = ChangePlanForm(
            request.POST or None,
            license=license,
            initial={"price": license.price_id, "seats": license.seats, "addons": []},
        )
        if request.method == "POST" and form.is_valid():
            try:
                plan_change = quote_plan_change(
                    license.tenant,
                    license=license,
                    target_price=form.cleaned_data["price"],
                    seats=form.cleaned_data["seats"],
                    addon_prices=list(form.cleaned_data["addons"]),
                    requested_by=request.user,
                )
            except TierwiseError as exc:
                form.add_error(None, exc.message)
                if isinstance(exc.details, dict):
                    for reasons in exc.details.values():
                        for reason in reasons if isinstance(reasons, list) else [reasons]:
                            form.add_error(None, str(reason))
            else:
                return redirect(reverse("admin:billing_license_change_plan_quote", args=[license.pk, plan_change.pk]))
        return TemplateResponse(
            request,
            "billing/admin/change_plan.html",
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "opts": self.opts,  # type: ignore[attr-defined]
                "title": f"Change plan: {license.account}",
                "license": license,
                "form": form,
                "step": "form",
            },
        )

    def change_plan_quote_view(self, request: HttpRequest, object_id: str, plan_change_id: int) -> HttpResponse:
        from billing.admin import render_lines

        license = self._licence_for_change(request, object_id)
        plan_change = selectors.list_plan_changes(license.tenant).filter(pk=plan_change_id, license=license).first()
        if plan_change is None:
            raise PermissionDenied
        if request.method == "POST":
            try:
                confirm_plan_change(license.tenant, plan_change=plan_change, actor=request.user)
            except TierwiseError as exc:
                messages.error(request, exc.message)
                return redirect(request.path)
            messages.success(request, "Confirmed: Stripe is taking the payment. This page shows it as it settles.")
            return redirect(reverse("admin:billing_planchange_change", args=[plan_change.pk]))
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        return TemplateResponse(
            request,
            "billing/admin/change_plan.html",
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "opts": self.opts,  # type: ignore[attr-defined]
                "title": f"Quote: {license.account}",
                "license": license,
                "plan_change": plan_change,
                "lines": render_lines(plan_change.quote_lines, plan_change.currency, plan_change.quote_total),
                "amount_due": money_text(plan_change.quote_amount_due, plan_change.currency),
                "can_confirm": plan_change.state == PlanChangeState.QUOTED,
                "step": "quote",
            },
        )

    def grant_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A time-limited trial or CSM grant on top of the licence (the `start_grant` service)."""
        license = self._licence_for_change(request, object_id)
        form = GrantForm(request.POST or None, license=license)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                start_grant(
                    license.tenant,
                    account=license.account,
                    kind=data["kind"],
                    actor=request.user,
                    tier=data["tier"],
                    addon=data["addon"],
                    days=data["days"],
                    reason=data["reason"],
                )
            except TierwiseError as exc:
                form.add_error(None, exc.message)
                if isinstance(exc.details, dict):
                    for reasons in exc.details.values():
                        for reason in reasons if isinstance(reasons, list) else [reasons]:
                            form.add_error(None, str(reason))
            else:
                messages.success(request, f"Granted for {data['days']} day(s).")
                return redirect(reverse("admin:billing_license_change", args=[license.pk]))
        return TemplateResponse(
            request,
            "billing/admin/change_plan.html",
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "opts": self.opts,  # type: ignore[attr-defined]
                "title": f"Grant a trial or CSM grant: {license.account}",
                "license": license,
                "form": form,
                "step": "form",
                "submit_label": "Grant",
            },
        )
