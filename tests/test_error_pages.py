"""403, 404 and 500 pages come in the product's look (templates/error_page.html), not Django's bare text."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db


def looks_like_the_product(html: str) -> bool:
    return 'data-testid="error-page"' in html and "tierwise.css" in html and 'class="brand"' in html


def test_a_missing_page_is_a_styled_404(settings):
    settings.DEBUG = False
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert looks_like_the_product(html) and "There is nothing here" in html


def test_a_page_your_role_may_not_open_is_a_styled_403(settings, world_a):
    settings.DEBUG = False
    response = world_a.staff_client("analyst").get("/admin/catalog/tier/add/")
    assert response.status_code == 403
    html = response.content.decode()
    assert looks_like_the_product(html) and "needs a permission your role" in html


def test_a_server_error_is_a_styled_500_without_a_request_context():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert looks_like_the_product(html) and "Something went wrong" in html
