"""Test helpers under /_standin/ and /_config/: events, redelivery, webhooks, flush, response delays."""

from __future__ import annotations

from aiohttp import web
from localstripe import webhooks as ls_webhooks

from devtools.stripe_standin import events as webhook_events
from devtools.stripe_standin.core import (
    DELAYS,
    STATE,
    StripeHTTPError,
    as_int,
    form,
    json_ok,
    list_object,
    missing,
    reset_state,
)
from devtools.stripe_standin.events import deliver


async def list_events(request: web.Request) -> web.Response:
    data = await form(request)
    events = [e for e in STATE["events"] if not data.get("type") or e["type"] == data["type"]]
    return json_ok(
        list_object([{k: v for k, v in e.items() if not k.startswith("_")} for e in events], "/_standin/events")
    )


async def redeliver_event(request: web.Request) -> web.Response:
    event = next((e for e in STATE["events"] if e["id"] == request.match_info["id"]), None)
    if event is None:
        raise missing("event", request.match_info["id"])
    await deliver(event, delay=0, held=False)
    return json_ok({"delivered": event["id"]})


def _holds() -> dict:
    return {"holds": sorted(webhook_events.HOLDS), "waiting": webhook_events.waiting_deliveries()}


async def hold_webhooks(request: web.Request) -> web.Response:
    """Queue webhook deliveries under a holder's name until it releases them (`make run` holds them while
    seeding, so the site receives them once it is up and the seed has committed)."""
    name = str((await form(request)).get("name") or "")
    if not name:
        raise StripeHTTPError(400, "name is required.")
    webhook_events.hold(name)
    return json_ok(_holds())


async def release_webhooks(request: web.Request) -> web.Response:
    name = str((await form(request)).get("name") or "")
    if not name:
        raise StripeHTTPError(400, "name is required.")
    webhook_events.release(name)
    return json_ok(_holds())


async def list_webhook_holds(request: web.Request) -> web.Response:
    return json_ok(_holds())


async def config_webhook(request: web.Request) -> web.Response:
    data = await form(request)
    url, secret, events = data.get("url"), data.get("secret"), data.get("events")
    if (
        not url
        or not secret
        or not str(url).startswith("http")
        or (events is not None and not isinstance(events, list))
    ):
        raise StripeHTTPError(400, "url (http...) and secret are required; events must be a list.")
    ls_webhooks.register_webhook(request.match_info["id"], url, secret, events)
    STATE["webhook_accounts"][request.match_info["id"]] = data.get("api_key") or None
    return web.Response()


async def flush(request: web.Request) -> web.Response:
    reset_state()
    for name in list(webhook_events.HOLDS):  # a clean slate delivers again
        webhook_events.release(name)
    return web.Response()


async def set_delay(request: web.Request) -> web.Response:
    """Hold back the answers to the next `count` POSTs under `path` by `seconds` (after doing their work)."""
    data = await form(request)
    path = str(data.get("path") or "")
    if not path.startswith("/v1/"):
        raise StripeHTTPError(400, "path must start with /v1/.")
    seconds = float(data.get("seconds") or 0)
    if not 0 < seconds <= 600:
        raise StripeHTTPError(400, "seconds must be more than 0 and at most 600.")
    DELAYS[path] = {"seconds": seconds, "remaining": as_int(data.get("count", 1), "count"), "held": 0}
    return json_ok({"path": path, **DELAYS[path]})


async def list_delays(request: web.Request) -> web.Response:
    return json_ok(list_object([{"path": p, **r} for p, r in DELAYS.items()], "/_standin/delays"))
