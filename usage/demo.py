"""Demo usage: ~90 days of events for every demo account, with patterns a person recognises.

Patterns (one per account, deterministic): steady; growing toward a limit; repeatedly hitting
a locked feature; trialling (accounts with an active trial grant); near renewal; fading;
and new accounts onboarding. Besides metered usage there are onboarding milestones, support
tickets, survey answers and seat changes, stored the same way.

Written set-based through `services.write_events` (keys, events and rollups in a few
statements per 5,000 events); event keys are deterministic and a marker key records that
the tenant was seeded, so running it again adds nothing. Accounts without a licence (the
billing seed may not have run) use the free tier's limits.

API calls are counted one event per call, so their daily volume is capped for the demo
(a few hundred a day): only free-tier accounts can visibly approach their API-call limit.
Growth toward a limit shows on every tier through storage, projects and active users.
"""

from __future__ import annotations

import datetime
import json
import random
from collections.abc import Iterator

from django.utils import timezone

from accounts.demo import DemoTenant
from accounts.models import CustomerAccount, LifecycleStage, Tenant
from accounts.tenancy import tenant_context
from billing.models import License, LicenseGrant
from catalog import selectors as catalog_selectors
from catalog.models import Aggregation, FeatureKind, Meter
from usage import services
from usage.models import FEATURE_GATE_HIT_EVENT, IngestKey
from usage.selectors import ENTITLED_STATUSES

MARKER_KEY = "demo-seed:usage:v1"
# One event per API call: only accounts growing toward their limit get the full volume, and only
# this month (the window that counts); everyone else shows light daily activity.
DAILY_CALL_CAP = 400
LIGHT_CALLS_PER_DAY = 4
UNIQUE_PER_DAY = 4  # ids sampled per day from the active set: over a window the unique count still fills up
NOMINAL_LIMIT = 40  # scale for unlimited unique/max meters
CHUNK = 5000

PATTERNS = [("steady", 40), ("growing", 20), ("gate_hits", 12), ("fading", 14), ("near_renewal", 8), ("onboarding", 6)]


def seed_usage(demo: DemoTenant, other: DemoTenant) -> None:
    """Called once from seed_demo, after billing."""
    with tenant_context(demo.tenant):  # row-level security: each tenant's rows inside it
        seed_tenant_usage(demo.tenant, seed=41, days=90)
    with tenant_context(other.tenant):
        seed_tenant_usage(other.tenant, seed=43, days=30)


def _level(pattern: str, t: float, rng: random.Random) -> float:
    """Share of the limit in use at time t (0 = first seeded day, 1 = today)."""
    noise = 1 + rng.uniform(-0.08, 0.08)
    if pattern == "growing":
        return (0.25 + 0.7 * t**1.6) * noise
    if pattern == "fading":
        return max(0.05, 0.6 * (1 - t) ** 1.3) * noise
    if pattern == "trialling":
        return (0.35 + 0.45 * max(0.0, t - 0.8) / 0.2) * noise
    if pattern == "onboarding":
        return (0.05 + 0.4 * t) * noise
    return 0.4 * noise  # steady, gate_hits, near_renewal


def seed_tenant_usage(tenant: Tenant, *, seed: int, days: int) -> int:
    """Returns the number of events written (0 when the tenant was seeded before)."""
    if IngestKey.objects.for_tenant(tenant).filter(key=MARKER_KEY).exists():
        return 0
    now = timezone.now().replace(microsecond=0)
    today = now.date()
    first_day = today - datetime.timedelta(days=days - 1)
    meters = list(Meter.objects.for_tenant(tenant).filter(feature__isnull=False).select_related("feature"))
    licences = {
        lic.account_id: lic
        for lic in License.objects.for_tenant(tenant).select_related("tier")
        if lic.status in ENTITLED_STATUSES
    }
    trials = {
        g.account_id: g
        for g in LicenseGrant.objects.for_tenant(tenant)
        .filter(ends_at__gt=now, starts_at__lte=now)
        .select_related("tier", "addon")
    }
    free = catalog_selectors.get_default_tier(tenant)
    plans: dict[int | None, dict] = {}

    def plan_for(tier) -> dict:
        key = tier.pk if tier else None
        if key not in plans:
            plans[key] = catalog_selectors.entitlements_for(tenant, tier=tier) if tier else {}
        return plans[key]

    rows: list[tuple] = []
    rng = random.Random(seed)
    for account in CustomerAccount.objects.for_tenant(tenant).order_by("external_id"):
        licence = licences.get(account.pk)
        tier = licence.tier if licence else free
        entitlements = plan_for(tier)
        pattern = _pattern(account, licence, account.pk in trials, rng, now)
        locked = [key for key, e in entitlements.items() if e.kind == FeatureKind.BOOLEAN and not e.enabled]
        rows.extend(
            _account_events(
                account,
                pattern=pattern,
                meters=meters,
                entitlements=entitlements,
                locked=locked,
                trial=trials.get(account.pk),
                first_day=first_day,
                days=days,
                now=now,
                rng=random.Random(f"{seed}:{account.external_id}"),
            )
        )
    specs = services.meters_by_event(tenant.pk)
    written = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        new, _ = services.write_events(tenant.pk, chunk, specs_by_event=specs, received_at=now)
        written += len(new)
    # The marker: a key with no event, written last, so a crash mid-way re-seeds (duplicates are skipped).
    IngestKey.objects.create(tenant=tenant, key=MARKER_KEY, created_at=now)
    return written


def _pattern(
    account: CustomerAccount, licence: License | None, trialling: bool, rng: random.Random, now: datetime.datetime
) -> str:
    choice = rng.choices([p for p, _ in PATTERNS], weights=[w for _, w in PATTERNS])[0]
    if trialling:
        return "trialling"
    if account.lifecycle_stage == LifecycleStage.ONBOARDING:
        return "onboarding"
    if (
        licence is not None
        and licence.current_period_end - now < datetime.timedelta(days=30)
        and licence.interval == "year"
    ):
        return "near_renewal"
    if account.lifecycle_stage == LifecycleStage.AT_RISK:
        return "fading"
    if choice == "near_renewal":
        return "steady"
    return choice


def _account_events(
    account: CustomerAccount,
    *,
    pattern: str,
    meters: list[Meter],
    entitlements: dict,
    locked: list[str],
    trial: LicenseGrant | None,
    first_day: datetime.date,
    days: int,
    now: datetime.datetime,
    rng: random.Random,
) -> Iterator[tuple]:
    ext = account.external_id
    this_month = now.date().replace(day=1)
    start_offset = days - rng.randint(12, 20) if pattern == "onboarding" else 0
    seats_prev = None
    for offset in range(start_offset, days):
        day = first_day + datetime.timedelta(days=offset)
        t = offset / max(days - 1, 1)
        weekday_factor = 0.35 if day.weekday() >= 5 else 1.0
        level = _level(pattern, t, rng)
        midnight = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
        span = min(86_399, int((now - midnight).total_seconds()) - 1)
        if span <= 0:
            continue

        def at(i: int, n: int, _midnight=midnight, _span=span) -> datetime.datetime:
            return _midnight + datetime.timedelta(seconds=int(_span * (i + rng.random()) / max(n, 1)))

        for meter in meters:
            ent = entitlements.get(meter.feature.key)
            if ent is None or not ent.enabled:
                continue
            limit = ent.limit
            name = meter.event_name
            if meter.aggregation == Aggregation.COUNT:
                monthly = limit if limit is not None else DAILY_CALL_CAP * 30
                full = pattern == "growing" and day >= this_month and monthly <= DAILY_CALL_CAP * 30
                # Growing accounts work weekends too: this month's total ends near (or past) the limit.
                per_day = int(monthly * level / 21) if full else int(monthly * level / 26 * weekday_factor)
                per_day = min(DAILY_CALL_CAP if full else LIGHT_CALLS_PER_DAY, per_day)
                for i in range(per_day):
                    yield _row(account, name, at(i, per_day), f"demo:{ext}:{day}:{name}:{i}", {})
            elif meter.aggregation in (Aggregation.MAX, Aggregation.SUM):
                scale = limit if limit is not None else NOMINAL_LIMIT * 10
                value = (
                    max(0, int(scale * level))
                    if meter.aggregation == Aggregation.MAX
                    else max(1, int(scale * level / 26))
                )
                yield _row(account, name, at(0, 1), f"demo:{ext}:{day}:{name}:0", {meter.property: value})
            elif meter.aggregation == Aggregation.UNIQUE_COUNT:
                scale = limit if limit is not None else NOMINAL_LIMIT
                active = max(1, min(60, round(scale * level)))
                prefix = "user" if "user" in meter.property else "project"
                picks = sorted(rng.sample(range(1, active + 1), min(active, UNIQUE_PER_DAY)))
                if offset >= days - 3:
                    picks = list(range(1, active + 1))  # the last days touch every active id: the count is exact
                for i, n in enumerate(picks):
                    yield _row(
                        account,
                        name,
                        at(i, len(picks)),
                        f"demo:{ext}:{day}:{name}:{n}",
                        {meter.property: f"{prefix}-{n}"},
                    )
        # Signals that aren't metered usage.
        if pattern == "gate_hits" and locked and t > 0.6 and rng.random() < 0.45:
            feature = locked[0]
            for i in range(rng.randint(1, 3)):
                yield _row(
                    account,
                    FEATURE_GATE_HIT_EVENT,
                    at(i, 3),
                    f"demo:{ext}:{day}:gate:{i}",
                    {"feature": feature, "quantity": 1, "reason": "not_in_plan"},
                )
        trial_day = pattern == "trialling" and trial is not None and day >= trial.starts_at.date()
        if trial_day and rng.random() < 0.6:
            yield _row(
                account,
                "trial.feature_used",
                at(1, 3),
                f"demo:{ext}:{day}:trial",
                {"tier": trial.tier.key if trial.tier_id else "", "addon": trial.addon.key if trial.addon_id else ""},
            )
        if pattern == "onboarding" and offset - start_offset in (0, 2, 5, 9):
            step = {0: "account_created", 2: "data_source_connected", 5: "team_invited", 9: "first_dashboard_shared"}[
                offset - start_offset
            ]
            yield _row(account, "onboarding.milestone", at(0, 1), f"demo:{ext}:{day}:onboarding", {"step": step})
        if rng.random() < (0.05 if pattern == "fading" else 0.015):
            yield _row(
                account,
                "support.ticket",
                at(2, 3),
                f"demo:{ext}:{day}:ticket",
                {
                    "severity": rng.choice(["low", "normal", "high"]),
                    "topic": rng.choice(["billing", "api", "dashboards", "sso", "performance"]),
                },
            )
        if offset in (days - 60, days - 3) and rng.random() < 0.5:
            score = rng.randint(2, 6) if pattern == "fading" else rng.randint(6, 10)
            yield _row(
                account, "survey.answered", at(1, 2), f"demo:{ext}:{day}:survey", {"survey": "nps", "score": score}
            )
        if offset % 30 == 0:
            seats = max(1, int((entitlements.get("seats").limit or 50) * level)) if entitlements.get("seats") else None
            if seats is not None and seats != seats_prev and seats_prev is not None:
                yield _row(
                    account, "seats.changed", at(0, 2), f"demo:{ext}:{day}:seats", {"from": seats_prev, "to": seats}
                )
            seats_prev = seats


def _row(account: CustomerAccount, name: str, at: datetime.datetime, key: str, properties: dict) -> tuple:
    return (0, account.pk, name, at, key, properties, json.dumps(properties, separators=(",", ":")))
