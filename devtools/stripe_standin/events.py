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


# --- Holding deliveries back ----------------------------------------------------------------------
#
# `make run` starts the stand-in with its webhooks held (`--hold-webhooks startup`) and releases them once
# the seed has committed and the web server answers: events the seed causes are queued, not sent to a site
# that is not up yet or that cannot see the seed's uncommitted rows (each would fail and be retried,
# flooding the log). Real Stripe never holds; the app receives the same events, later, once each.
HOLDS: set[str] = set()
_released: asyncio.Event | None = None
MAX_CONCURRENT_DELIVERIES = 8  # a released backlog reaches the site a few at a time, not all at once
_slots: asyncio.Semaphore | None = None


def _gate() -> asyncio.Event:
    global _released
    if _released is None:
        _released = asyncio.Event()
        if not HOLDS:
            _released.set()
    return _released


def _slot() -> asyncio.Semaphore:
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(MAX_CONCURRENT_DELIVERIES)
    return _slots


def hold(name: str) -> None:
    """Queue every delivery until each holder has released (holders are named, e.g. 'startup')."""
    HOLDS.add(name)
    if _released is not None:
        _released.clear()


def release(name: str) -> None:
    HOLDS.discard(name)
    if not HOLDS and _released is not None:
        _released.set()


def waiting_deliveries() -> int:
    return _waiting


_waiting = 0


async def _wait_for_release() -> None:
    global _waiting
    gate = _gate()
    if gate.is_set():
        return
    _waiting += 1
    try:
        await gate.wait()
    finally:
        _waiting -= 1


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


async def deliver(event: dict[str, Any], *, delay: float | None = None, attempts: int = 10, held: bool = True) -> None:
    """Like Stripe, retry with growing pauses (compressed: ~2 minutes rather than 3 days). While deliveries
    are held (see `hold`) the event waits, unless `held` is False (an explicit redelivery)."""
    await asyncio.sleep(WEBHOOK_DELAY if delay is None else delay)
    if held:
        await _wait_for_release()
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
                    _slot(),
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
