"""Staff pages of offers: the list with its filters, one offer's page (evidence, options side by side,
anchor, discount, every quote line, ROI, timeline, feedback) and its actions (review and send,
approve an out-of-policy discount, withdraw, accept on the customer's behalf), and "Make an offer now".
Thin: the services (lifecycle, review, acceptance, building) decide; the page shows what they said."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse

from accounts.admin_base import TenantScopedAdmin
from accounts.models import Capability, CustomerAccount
from upgrades.offers import admin_views
from upgrades.offers.admin_common import object_or_404, page, run
from upgrades.offers.models import Offer, OfferState, OfferTargetKind
from upgrades.offers.services import acceptance, review
from upgrades.offers.services.building import build_offer

DETAIL = "admin/upgrades/offer/detail.html"
MAKE = "admin/upgrades/offer/make.html"

# verb -> (service, capability, what the message says)
ACTIONS: dict[str, tuple[Callable[..., Any], str, str]] = {
    "review": (review.review_offer, Capability.REVIEW_OFFERS, "reviewed and sent"),
    "approve_discount": (review.approve_offer_discount, Capability.VIEW, "discount approved"),
    "withdraw": (review.withdraw_offer, Capability.REVIEW_OFFERS, "withdrawn"),
    "accept": (acceptance.accept_offer, Capability.REVIEW_OFFERS, "accepted on the customer's behalf"),
}


@admin.register(Offer)
class OfferAdmin(TenantScopedAdmin):
    edit_capability = Capability.REVIEW_OFFERS
    audit_admin_edits = False
    list_display = ("id", "account", "target", "state", "signal_kind", "amount_shown", "discount_shown",
                    "expires_at", "created_at")  # fmt: skip
    list_filter = ("state", "signal__kind", "target_kind", "account")
    list_select_related = ("account", "signal")
    search_fields = ("account__external_id", "account__name", "target_key")
    date_hierarchy = "created_at"

    @admin.display(description="Offer")
    def target(self, obj: Offer) -> str:
        return f"{obj.get_target_kind_display()} {obj.target_key}"

    @admin.display(description="Signal", ordering="signal__kind")
    def signal_kind(self, obj: Offer) -> str:
        return obj.signal.get_kind_display() if obj.signal else "on demand"

    @admin.display(description="Recommended")
    def amount_shown(self, obj: Offer) -> str:
        return admin_views.recommended_amount(obj)

    @admin.display(description="Discount")
    def discount_shown(self, obj: Offer) -> str:
        return admin_views.discount_short(obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # offers are made by the engine ("Make an offer now" calls it)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # state changes only through the actions below

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        account = request.GET.get("account__id__exact", "")
        extra = {"can_make_offer": self._can(request, Capability.REVIEW_OFFERS),
                 "make_offer_account": account if account.isdigit() else "", **(extra_context or {})}  # fmt: skip
        return super().changelist_view(request, extra_context=extra)

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("make/", view(self.make_view), name=f"{info[0]}_{info[1]}_make"),
            path("<path:object_id>/act/", view(self.act_view), name=f"{info[0]}_{info[1]}_act"),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        offer = object_or_404(self, request, object_id)
        if not self.has_view_permission(request, offer):
            raise PermissionDenied
        return page(
            self, request, DETAIL,
            title=f"Offer {offer.pk}: {offer.target_key} for {offer.account.name}",
            original=offer,
            view=admin_views.offer_view(offer),
            actions=self._actions(request, offer),
        )  # fmt: skip

    def _actions(self, request: HttpRequest, offer: Offer) -> list[dict[str, Any]]:
        """The buttons this offer's state allows; each says why it is disabled for this person."""
        can_review = self._can(request, Capability.REVIEW_OFFERS)
        out = []
        if offer.state == OfferState.AWAITING_REVIEW:
            waiting = offer.discount_approval_needed and offer.discount_approved_at is None
            why = "" if can_review else "Reviewing needs the 'review offers' permission (CSMs and owners)."
            if waiting and not why:
                why = "The discount is outside policy: approve it first."
            out.append({"verb": "review", "label": "Review and send", "why": why})
        if offer.discount_approval_needed and offer.discount_approved_at is None and offer.is_open:
            may = admin_views.may_approve_discount(request.tenant, request.user, getattr(request, "membership", None))
            why = "" if may else "Only the discount policy's exception approver (or the owner) may approve it."
            out.append({"verb": "approve_discount", "label": "Approve the discount", "why": why})
        if offer.state in (OfferState.SENT, OfferState.VIEWED) and offer.options:
            why = "" if can_review else "Needs the 'review offers' permission."
            out.append({"verb": "accept", "label": "Accept for the customer", "why": why,
                        "options": [(o.get("key"), admin_views.option_label(o, offer.currency))
                                    for o in offer.options]})  # fmt: skip
        if offer.is_open:
            why = "" if can_review else "Withdrawing needs the 'review offers' permission (CSMs and owners)."
            out.append({"verb": "withdraw", "label": "Withdraw", "why": why})
        return out

    def act_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        offer = object_or_404(self, request, object_id)
        verb = request.POST.get("verb", "")
        if verb not in ACTIONS:
            messages.error(request, "Unknown action.")
            return redirect(reverse("admin:upgrades_offer_change", args=[offer.pk]))
        func, capability, done = ACTIONS[verb]
        if not self._can(request, capability):
            raise PermissionDenied
        membership = getattr(request, "membership", None)
        if verb == "approve_discount" and not admin_views.may_approve_discount(
            request.tenant, request.user, membership
        ):
            raise PermissionDenied
        kwargs: dict[str, Any] = {"offer": offer, "actor": request.user}
        if verb == "withdraw":
            kwargs["reason"] = (request.POST.get("reason") or "").strip()[:500]
        if verb == "accept":
            kwargs["option_key"] = request.POST.get("option_key", "")
        run(request, lambda: func(request.tenant, **kwargs), f"Offer {offer.pk} {done}.")
        return redirect(reverse("admin:upgrades_offer_change", args=[offer.pk]))

    def make_view(self, request: HttpRequest) -> HttpResponse:
        """ "Make an offer now": the engine builds the offer for an account (optionally a named target)."""
        if not self._can(request, Capability.REVIEW_OFFERS):
            raise PermissionDenied
        tenant = request.tenant
        accounts = CustomerAccount.objects.for_tenant(tenant).order_by("name")
        values = {"account": request.GET.get("account", ""), "target_kind": "", "target_key": "", "variant": ""}
        if request.method == "POST":
            values = {name: (request.POST.get(name) or "").strip() for name in values}
            account = accounts.filter(pk=values["account"]).first() if values["account"].isdigit() else None
            if account is None:
                messages.error(request, "Choose one of your accounts.")
            elif values["target_kind"] and values["target_kind"] not in OfferTargetKind.values:
                messages.error(request, "Choose a tier, an add-on or a bundle (or let the engine choose).")
            else:
                offer = run(
                    request,
                    lambda: build_offer(
                        tenant,
                        account=account,
                        actor=request.user,
                        target_kind=values["target_kind"] or None,
                        target_key=values["target_key"] or None,
                        variant=values["variant"],
                    ),  # fmt: skip
                    lambda o: f"Offer {o.pk} for {account.name}: {o.get_state_display().lower()}.",
                )
                if offer is not None:
                    return redirect(reverse("admin:upgrades_offer_change", args=[offer.pk]))
        return page(
            self, request, MAKE,
            title="Make an offer now",
            accounts=accounts[:500],
            values=values,
            target_kinds=OfferTargetKind.choices,
        )  # fmt: skip
