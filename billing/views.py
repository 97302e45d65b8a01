"""Stripe webhook intake: thin. Verify over the raw body, store by event id, enqueue, answer."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import Tenant
from accounts.tenancy import activate_tenant
from billing.services.webhooks import WebhookRefused, record_webhook_event, verify_webhook

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1024 * 1024


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, tenant_slug: str) -> JsonResponse:
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    if tenant is None:
        return JsonResponse({"error": {"code": "not_found", "message": "Unknown endpoint."}}, status=404)
    activate_tenant(tenant)  # row-level security: the rest of this request works in this tenant
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": {"code": "too_large", "message": "Payload too large."}}, status=400)
    try:
        event = verify_webhook(tenant, payload=request.body, signature_header=request.headers.get("Stripe-Signature"))
    except WebhookRefused as exc:
        # Nothing is stored for a request we cannot attribute to this tenant's Stripe account.
        log.info("Stripe webhook refused", extra={"tenant": tenant.slug, "reason": str(exc)})
        return JsonResponse(
            {"error": {"code": "bad_signature", "message": "Signature verification failed."}}, status=400
        )
    row, created = record_webhook_event(tenant, event=event)
    return JsonResponse({"received": True, "duplicate": not created, "event": row.event_id})
