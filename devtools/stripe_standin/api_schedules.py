"""/v1/subscription_schedules: create (from a subscription), retrieve, update, release, cancel.

What is simulated, and how it departs from Stripe: schedules.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devtools.stripe_standin.api_subscriptions import end_subscription
from devtools.stripe_standin.core import (
    STATE,
    StripeHTTPError,
    account_of,
    export_schedule,
    export_subscription,
    form,
    json_ok,
    now,
)
from devtools.stripe_standin.events import emit
from devtools.stripe_standin.schedules import PRORATION_BEHAVIORS, new_schedule, parse_phases, schedule_of, set_phases
from devtools.stripe_standin.subscriptions import subscription_of


def refuse_unknown(data: dict[str, Any], known: set[str]) -> None:
    unknown = set(data) - known - {"expand"}
    if unknown:
        name = sorted(unknown)[0]
        raise StripeHTTPError(400, f"Received unknown parameter: {name}", param=name)


def require_active(sched: dict[str, Any], action: str) -> None:
    if sched["status"] != "active":
        raise StripeHTTPError(
            400, f"You cannot {action} a subscription schedule that is currently in the `{sched['status']}` status."
        )


async def create_schedule(request: web.Request) -> web.Response:
    account = account_of(request)
    data = dict(await form(request))
    data.pop("expand", None)
    sub_id = data.pop("from_subscription", None)
    if not sub_id:
        raise StripeHTTPError(
            400,
            "Missing required param: from_subscription (the stand-in creates schedules only from a subscription).",
            param="from_subscription",
        )
    if data:
        name = sorted(data)[0]
        raise StripeHTTPError(400, f"You cannot set `{name}` if `from_subscription` is set.", param=name)
    sub = subscription_of(account, str(sub_id))
    if sub["status"] == "canceled":
        raise StripeHTTPError(
            400, "You cannot migrate a canceled subscription to a subscription schedule.", param="from_subscription"
        )
    if sub.get("schedule"):
        raise StripeHTTPError(
            400,
            f"You cannot migrate a subscription that is already attached to a schedule: `{sub['schedule']}`.",
            param="from_subscription",
        )
    if sub["cancel_at_period_end"] or sub.get("cancel_at"):
        raise StripeHTTPError(
            400, "The stand-in does not migrate a subscription that is set to cancel.", param="from_subscription"
        )
    sched = new_schedule(sub)
    emit(account, "subscription_schedule.created", export_schedule(sched))
    emit(account, "customer.subscription.updated", export_subscription(sub), {"schedule": None})
    return json_ok(export_schedule(sched))


async def retrieve_schedule(request: web.Request) -> web.Response:
    return json_ok(export_schedule(schedule_of(account_of(request), request.match_info["id"])))


async def update_schedule(request: web.Request) -> web.Response:
    account = account_of(request)
    sched = schedule_of(account, request.match_info["id"])
    data = await form(request)
    refuse_unknown(data, {"phases", "end_behavior", "metadata", "proration_behavior"})
    require_active(sched, "update")
    if data.get("proration_behavior", "create_prorations") not in PRORATION_BEHAVIORS:
        raise StripeHTTPError(400, "Invalid proration_behavior.", param="proration_behavior")
    end_behavior = data.get("end_behavior", sched["end_behavior"])
    if end_behavior not in ("release", "cancel"):
        raise StripeHTTPError(400, "end_behavior must be release or cancel.", param="end_behavior")
    metadata = data.get("metadata")
    if metadata not in (None, "") and not isinstance(metadata, dict):
        raise StripeHTTPError(400, "Invalid object", param="metadata")
    sub = STATE["subscriptions"][sched["subscription"]]
    phases = parse_phases(sched, sub, data["phases"]) if "phases" in data else None
    # Everything is checked (set_phases checks before it changes anything): the update applies as a whole.
    previous = set_phases(sched, sub, phases) if phases is not None else {}
    sched["end_behavior"] = end_behavior
    if metadata == "":
        sched["metadata"] = {}
    elif isinstance(metadata, dict):
        for key, value in metadata.items():  # as in Stripe: "" unsets a key
            if value == "":
                sched["metadata"].pop(key, None)
            else:
                sched["metadata"][key] = value
    if previous:  # the current phase's discounts changed: the subscription's changed now
        emit(account, "customer.subscription.updated", export_subscription(sub), previous)
    emit(account, "subscription_schedule.updated", export_schedule(sched))
    return json_ok(export_schedule(sched))


async def release_schedule(request: web.Request) -> web.Response:
    """The subscription goes on as it is (items, discounts), no longer managed by the schedule."""
    account = account_of(request)
    sched = schedule_of(account, request.match_info["id"])
    refuse_unknown(await form(request), {"preserve_cancel_date"})  # nothing to preserve: no cancel date is set
    require_active(sched, "release")
    sub = STATE["subscriptions"][sched["subscription"]]
    sched.update(status="released", released_at=now(), released_subscription=sub["id"], current_phase=None)
    sub["schedule"] = None
    emit(account, "subscription_schedule.released", export_schedule(sched))
    emit(account, "customer.subscription.updated", export_subscription(sub), {"schedule": sched["id"]})
    return json_ok(export_schedule(sched))


async def cancel_schedule(request: web.Request) -> web.Response:
    """The schedule is canceled and its subscription ends now (like DELETE /v1/subscriptions: no final invoice,
    whatever invoice_now and prorate say)."""
    account = account_of(request)
    sched = schedule_of(account, request.match_info["id"])
    refuse_unknown(await form(request), {"invoice_now", "prorate"})
    require_active(sched, "cancel")
    end_subscription(STATE["subscriptions"][sched["subscription"]])  # cancels the schedule (schedule_canceled)
    return json_ok(export_schedule(sched))
