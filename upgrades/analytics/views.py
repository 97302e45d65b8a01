"""/analytics/: the dashboard for PMs, CSMs and analysts (every staff role of the tenant reads it).

Thin: the page and its CSV exports render the tenant's cached snapshot (snapshot.get_snapshot);
the tenant is the admin's (StaffTenantMiddleware: the one the person switched to).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from upgrades.analytics import definitions
from upgrades.analytics.board import COLUMNS as BOARD_COLUMNS
from upgrades.analytics.board import board_cells, upgrade_board
from upgrades.analytics.snapshot import get_snapshot
from upgrades.analytics.tables import TABLES, table_rows


def staff_of_tenant(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), login_url="admin:login")
        tenant = getattr(request, "tenant", None)
        if tenant is None or not (getattr(request, "membership", None) or request.user.is_superuser):
            raise Http404("No tenant to show.")
        return view(request, tenant, *args, **kwargs)

    return wrapper


def _charts(snapshot: dict) -> dict:
    revenue = snapshot.get("revenue", [])
    currencies = sorted({row["currency"] for row in revenue})
    series = {}
    for currency in currencies:
        rows = [row for row in revenue if row["currency"] == currency]
        series[currency] = {
            "labels": [row["period"] for row in rows],
            **{key: [row[key] for row in rows] for key in ("mrr_end", "new", "expansion", "reactivation")},
            **{key: [-row[key] for row in rows] for key in ("contraction", "churn")},
            "nrr": [row["nrr"] for row in rows],
            "grr": [row["grr"] for row in rows],
        }
    return {
        "currencies": series,
        "funnel": {
            "labels": [r["step"] for r in snapshot.get("funnel", [])],
            "values": [r["offers"] for r in snapshot.get("funnel", [])],
        },
    }


@staff_of_tenant
def dashboard(request: HttpRequest, tenant) -> HttpResponse:
    snapshot = get_snapshot(tenant)
    tables = [{"table": t, "rows": table_rows(t, snapshot)} for t in TABLES.values()]
    return render(
        request,
        "analytics/dashboard.html",
        {
            "tenant": tenant,
            "snapshot": snapshot,
            "tables": tables,
            "charts": _charts(snapshot),
            "trials": snapshot.get("trials", {}),
            "definitions": definitions,
            "title": "Analytics",
        },
    )


@staff_of_tenant
def export_csv(request: HttpRequest, tenant, name: str) -> HttpResponse:
    table = TABLES.get(name)
    if table is None:
        raise Http404("No such table.")
    snapshot = get_snapshot(tenant)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-{name}-{snapshot["to"]}.csv"'
    writer = csv.writer(response)
    writer.writerow([heading for _, heading, _ in table.columns])
    writer.writerows(table_rows(table, snapshot))
    return response


@staff_of_tenant
def board(request: HttpRequest, tenant) -> HttpResponse:
    rows = upgrade_board(tenant)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-upgrade-board.csv"'
        writer = csv.writer(response)
        writer.writerow([heading for _, heading in BOARD_COLUMNS])
        writer.writerows(board_cells(rows))
        return response
    return render(
        request,
        "analytics/board.html",
        {"tenant": tenant, "columns": BOARD_COLUMNS, "rows": board_cells(rows), "title": "Upgrade status"},
    )
