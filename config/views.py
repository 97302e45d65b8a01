from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found

from accounts.api_errors import json_not_found
from accounts.demo import DEMO_PASSWORD
from upgrades.selectors import demo_logins


def home(request: HttpRequest) -> HttpResponse:
    # Demo sign-ins are a development convenience: never listed on a production site.
    logins = demo_logins() if settings.DEBUG else []
    return render(request, "home.html", {"demo_logins": logins, "demo_password": DEMO_PASSWORD if logins else ""})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return page_not_found(request, exception)
