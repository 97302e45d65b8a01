"""Portal figures (issue 15): server time per portal page on the demo data, p95 against 150 ms.

Run by bench/run.py (`--portal-accounts N`, 0 skips; `--only-portal` runs these alone) on its bench
database as the app role under row-level security. `seed_demo --accounts N` makes the demo data; then,
for up to 20 demo accounts with an offer, a portal link is made and exchanged, and each page (my plan,
compare monthly and annual, the offer, the ROI recalculation, the payment status where accepted, the trial
where one exists) is requested through the whole Django stack in process (middleware, sessions, CSRF,
templates) 5 times. Server time is the wall time of the request inside the process (no network).

Figure (one JSON line per page and one overall): portal_page {page, n, p50_ms, p95_ms, target_ms, met}.
"""

from __future__ import annotations

import re
import time

TARGET_MS = 150.0
ACCOUNTS_SAMPLED = 20
REPEATS = 5


def _emit(figure: str, **values) -> None:
    from bench.run import emit

    emit(figure, **values)


def _p(values: list[float], pct: float) -> float:
    from bench.run import percentile

    return percentile(values, pct)


def run(owner_url: str, *, accounts: int = 200) -> dict[str, float]:
    from django.conf import settings as django_settings
    from django.core.management import call_command
    from django.test import override_settings

    from accounts.models import Tenant
    from accounts.tenancy import tenant_context
    from upgrades.offers.models import Offer, OfferState, Trial
    from upgrades.portal import tokens

    started = time.perf_counter()
    call_command("seed_demo", accounts=accounts, verbosity=0)
    seeded_s = time.perf_counter() - started
    tenant = Tenant.objects.get(slug="acme")
    with tenant_context(tenant):
        offers = list(
            Offer.objects.for_tenant(tenant)
            .filter(
                state__in=[
                    OfferState.SENT,
                    OfferState.VIEWED,
                    OfferState.ACCEPTED,
                    OfferState.FULFILLED,
                    OfferState.DECLINED,
                ]
            )
            .select_related("account")
            .order_by("pk")[:ACCOUNTS_SAMPLED]
        )
        plan = []
        for offer in offers:
            link = tokens.offer_link(tenant, offer=offer)
            trial = Trial.objects.for_tenant(tenant).filter(account=offer.account).first()
            plan.append((re.sub(r"^https?://[^/]+", "", link), offer, trial))
    times: dict[str, list[float]] = {}

    def timed(client, page: str, method: str, path: str, **extra) -> None:
        t0 = time.perf_counter()
        response = getattr(client, method)(path, secure=True, **extra)
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{page}: {response.status_code}")
        times.setdefault(page, []).append(elapsed)

    htmx = {"HTTP_HX_REQUEST": "true"}
    # No collectstatic in the bench: plain static storage (the hashed manifest is a deploy step).
    storages = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        _walk(plan, timed, htmx)
    return _report(times, accounts=accounts, sampled=len(plan), seeded_s=seeded_s)


def _walk(plan, timed, htmx) -> None:
    from django.test import Client

    from upgrades.offers.models import OfferState
    from upgrades.portal.selectors import ref_for

    for path, offer, trial in plan:
        client = Client()
        if client.get(path, secure=True).status_code != 302:  # the exchange (single use) starts the session
            raise RuntimeError("the portal link did not open a session")
        ref = ref_for("offer", offer)
        for _ in range(REPEATS):
            timed(client, "plan", "get", "/portal/")
            timed(client, "compare", "get", "/portal/compare")
            timed(client, "compare_annual", "get", "/portal/compare?interval=year", **htmx)
            timed(client, "offer", "get", f"/portal/offers/{ref}")
            timed(client, "roi", "post", f"/portal/offers/{ref}/roi", data={}, **htmx)
            if offer.state in (OfferState.ACCEPTED, OfferState.FULFILLED):
                timed(client, "status", "get", f"/portal/offers/{ref}/status", **htmx)
            if trial is not None:
                timed(client, "trial", "get", f"/portal/trials/{ref_for('trial', trial)}")


def _report(times: dict[str, list[float]], *, accounts: int, sampled: int, seeded_s: float) -> dict[str, float]:
    everything: list[float] = []
    result: dict[str, float] = {}
    for page, values in sorted(times.items()):
        everything += values
        p95 = _p(values, 95)
        result[page] = p95
        _emit(
            "portal_page",
            page=page,
            n=len(values),
            p50_ms=round(_p(values, 50), 1),
            p95_ms=round(p95, 1),
            target_ms=TARGET_MS,
            met=p95 < TARGET_MS,
        )
    if everything:
        p95 = _p(everything, 95)
        _emit(
            "portal_page",
            page="all",
            n=len(everything),
            accounts=accounts,
            offers_sampled=sampled,
            seed_s=round(seeded_s, 1),
            p50_ms=round(_p(everything, 50), 1),
            p95_ms=round(p95, 1),
            target_ms=TARGET_MS,
            met=p95 < TARGET_MS,
        )
    return result
