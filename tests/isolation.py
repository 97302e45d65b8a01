"""Reusable admin isolation checks: tenant A's staff must not list, open, change or pick B's rows."""

from __future__ import annotations

from django.db import models
from django.test import Client
from django.urls import reverse


def admin_url(obj_or_model, view: str = "change") -> str:
    meta = obj_or_model._meta
    name = f"admin:{meta.app_label}_{meta.model_name}_{view}"
    if view in ("change", "delete", "history"):
        return reverse(name, args=[obj_or_model.pk])
    return reverse(name)


def assert_changelist_hides(client: Client, *, own: models.Model, foreign: models.Model) -> None:
    response = client.get(admin_url(type(own), "changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert admin_url(own) in html, "own row is not listed"
    assert admin_url(foreign) not in html, "another tenant's row is listed"


def assert_change_page_refuses(client: Client, foreign: models.Model) -> None:
    """Django admin answers a missing (here: foreign) id with a redirect to the index; nothing is shown."""
    for view in ("change", "delete", "history"):
        response = client.get(admin_url(foreign, view))
        assert response.status_code in (302, 403, 404), f"{view} page of a foreign row opened"
        assert str(foreign) not in response.content.decode(), f"{view} page shows the foreign row"
        if response.status_code == 302:
            assert response["Location"].startswith("/admin/")


def assert_dropdown_excludes(client: Client, add_url: str, foreign: models.Model) -> None:
    html = client.get(add_url).content.decode()
    assert f'value="{foreign.pk}"' not in html or str(foreign) not in html, "a foreign row is offered in a dropdown"
