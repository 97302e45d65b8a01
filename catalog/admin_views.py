"""Admin pages that are not a model's change form: the entitlement matrix and the pricing preview.

Reached through TierAdmin.get_urls (so the admin's login and tenant middleware apply);
every read goes through catalog.selectors with request.tenant, every write through
catalog.services.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.models import Capability
from catalog import pricing, selectors, services
from catalog.errors import TierwiseError
from catalog.models import Enforcement, Entitlement, Feature, FeatureKind, Tier

if TYPE_CHECKING:
    from catalog.admin import TierAdmin

MAX_LIMIT = 10**15


@dataclass
class CellView:
    tier: Tier
    feature: Feature
    entitlement: Entitlement | None
    editable: bool
    flagged: bool
    prefix: str
    enabled: bool
    limit: str
    enforcement: str
    error: str = ""


def _cell_from_post(post: Any, prefix: str, feature: Feature) -> tuple[services.Grant | None, bool, str, str, str]:
    """(grant, enabled, limit text, enforcement, error) for one posted cell."""
    enabled = post.get(f"{prefix}-on") == "on"
    limit_text = (post.get(f"{prefix}-limit") or "").strip().replace(",", "").replace("_", "")
    enforcement = post.get(f"{prefix}-enf") or Enforcement.HARD
    if enforcement not in Enforcement.values:
        return None, enabled, limit_text, Enforcement.HARD, "Pick hard or soft."
    limit = None
    if limit_text and feature.kind != FeatureKind.BOOLEAN:
        if not limit_text.isdigit() or int(limit_text) > MAX_LIMIT:
            return None, enabled, limit_text, enforcement, "A whole number, or empty for unlimited."
        limit = int(limit_text)
    return services.Grant(enabled=enabled, limit=limit, enforcement=enforcement), enabled, limit_text, enforcement, ""


def entitlement_matrix_view(model_admin: TierAdmin, request: HttpRequest) -> HttpResponse:
    tenant = getattr(request, "tenant", None)
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Entitlement matrix",
    }
    if tenant is None:
        messages.error(request, "Choose a workspace first.")
        return HttpResponseRedirect(reverse("admin:index"))
    products = list(selectors.list_products(tenant))
    wanted = request.POST.get("product") or request.GET.get("product")
    product = next((p for p in products if str(p.pk) == wanted), products[0] if products else None)
    context.update(products=products, product=product)
    if product is None:
        return TemplateResponse(request, "admin/catalog/entitlement_matrix.html", context)
    matrix = selectors.entitlement_matrix(tenant, product=product)
    can_edit = model_admin._can(request, Capability.EDIT_CATALOG)
    flagged = matrix.flagged()
    posted = request.method == "POST"
    if posted and not can_edit:
        raise PermissionDenied
    rows, cells_to_save, errors = [], [], 0
    for feature in matrix.features:
        row = []
        for tier in matrix.tiers:
            entitlement = matrix.cell(tier, feature)
            editable = can_edit and tier.is_editable
            prefix = f"c-{tier.pk}-{feature.pk}"
            cell = CellView(
                tier=tier,
                feature=feature,
                entitlement=entitlement,
                editable=editable,
                flagged=(tier.pk, feature.pk) in flagged,
                prefix=prefix,
                enabled=bool(entitlement and entitlement.enabled),
                limit="" if entitlement is None or entitlement.limit is None else str(entitlement.limit),
                enforcement=entitlement.enforcement if entitlement else Enforcement.HARD,
            )
            if posted and editable:
                grant, cell.enabled, cell.limit, cell.enforcement, cell.error = _cell_from_post(
                    request.POST, prefix, feature
                )
                if grant is None:
                    errors += 1
                else:
                    if entitlement is not None:  # keep what the grid doesn't show
                        grant = services.Grant(
                            grant.enabled,
                            grant.limit,
                            grant.enforcement,
                            entitlement.soft_limit_percent,
                            entitlement.overage_note,
                        )
                    cells_to_save.append(services.MatrixCell(tier=tier, feature=feature, grant=grant))
            row.append(cell)
        rows.append({"feature": feature, "cells": row})
    if posted:
        if errors:
            messages.error(request, f"{errors} cell(s) need a correction; nothing was saved.")
        else:
            try:
                changed = services.set_entitlement_matrix(tenant, cells=cells_to_save, actor=request.user)
            except TierwiseError as exc:
                messages.error(request, f"Nothing was saved: {exc.message}")
            else:
                messages.success(request, f"Saved {changed} changed cell(s).")
                after = selectors.entitlement_matrix(tenant, product=product)
                for conflict in after.conflicts:
                    messages.warning(request, conflict.message)
                return HttpResponseRedirect(f"{reverse('admin:catalog_tier_matrix')}?product={product.pk}")
    context.update(
        matrix=matrix,
        rows=rows,
        can_edit=can_edit,
        has_editable=any(c.editable for r in rows for c in r["cells"]),
        conflicts=matrix.conflicts,
        enforcement_choices=Enforcement.choices,
    )
    return TemplateResponse(request, "admin/catalog/entitlement_matrix.html", context)


def pricing_preview_view(model_admin: TierAdmin, request: HttpRequest) -> HttpResponse:
    tenant = getattr(request, "tenant", None)
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if tenant is None:
        messages.error(request, "Choose a workspace first.")
        return HttpResponseRedirect(reverse("admin:index"))
    include_pending = request.GET.get("pending") == "1"
    tables = selectors.build_pricing_tables(tenant, include_pending=include_pending)
    policy = selectors.get_discount_policy(tenant)
    return TemplateResponse(
        request,
        "admin/catalog/pricing_preview.html",
        {
            "tables": tables,
            "policy": policy,
            "policy_summary": pricing.describe_policy(policy),
            "include_pending": include_pending,
            "tenant": tenant,
            "title": "Pricing preview",
        },
    )
