"""Events and their webhook delivery, signed like Stripe and retried on failure."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import aiohttp
from localstripe import resources as ls
from localstripe import webhooks as ls_webhooks

from devtools.stripe_standin.core import API_VERSION, STATE, export_customer, log, new_id, now

# --- Events and webhook delivery ---------------------------------------------------------------


def emit(
    account: str | None,
    type_: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    event = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "livemode": False,
        "type": type_,
        "data": {"object": obj, **({"previous_attributes": previous} if previous else {})},
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": idempotency_key},
        "_account": account,
    }
    STATE["events"].append(event)
    try:
        task = asyncio.get_running_loop().create_task(deliver(event))
    except RuntimeError:  # no loop (unit use): nothing to deliver
        return event
    _deliveries.add(task)  # keep a reference until it is done, or the loop may drop it
    task.add_done_callback(_deliveries.discard)
    return event


_deliveries: set[asyncio.Task[None]] = set()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


async def deliver(event: dict[str, Any], *, delay: float | None = None, attempts: int = 10) -> None:
    """Like Stripe, retry with growing pauses (compressed: ~2 minutes rather than 3 days), so events sent
    while the receiving server is still starting (e.g. during `make run`'s seeding) arrive later."""
    await asyncio.sleep(WEBHOOK_DELAY if delay is None else delay)
    payload = json.dumps({k: v for k, v in event.items() if not k.startswith("_")}).encode()
    for hook_id, hook in list(ls_webhooks._webhooks.items()):
        hook_account = STATE["webhook_accounts"].get(hook_id)
        if hook_account and event["_account"] and hook_account != event["_account"]:
            continue
        if hook.events is not None and event["type"] not in hook.events:
            continue
        for attempt in range(attempts):
            # Like Stripe, every attempt is signed afresh with the time it is sent.
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(payload, hook.secret, now()),
            }
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        hook.url, data=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
                    ) as response,
                ):
                    if 200 <= response.status < 300:
                        break
                    log.info("webhook %s to %s answered %s", event["type"], hook.url, response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("webhook %s to %s failed: %s", event["type"], hook.url, exc)
            await asyncio.sleep(min(0.5 * 2**attempt, 30))


def _forward_localstripe_event(event: Any) -> None:
    # localstripe's own events carry its old shapes; forward only customer.* (re-exported).
    if not event.type.startswith("customer."):
        return
    customer_id = event.data["object"].get("id", "")
    emit(STATE["owners"].get(customer_id), event.type, export_customer(customer_id))


ls.schedule_webhook = _forward_localstripe_event  # resources.py calls it by this module-level name


WEBHOOK_DELAY = 0.3
