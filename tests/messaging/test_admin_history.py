"""A template's History page in the admin: every version of its key and variant, newest first, with
states, people and dates in the tenant's zone, and an escaped line diff against the version before;
tenant walls and view permission hold."""

from __future__ import annotations

import re
import zoneinfo

import pytest
from django.utils import formats

from accounts import models as account_models
from accounts.models import Capability, Membership, Role, User
from messaging.models import TemplateState
from messaging.selectors_history import diff_lines, list_template_versions
from tests.isolation import admin_url
from tests.messaging.conftest import live_template
from tests.messaging.history_setup import NEW_HTML_LINE, write_history

pytestmark = pytest.mark.django_db


def _sections(html: str) -> dict[int, str]:
    parts = re.split(r'<section class="tw-review-item" data-testid="version" data-version="(\d+)">', html)[1:]
    return {int(number): body for number, body in zip(parts[::2], parts[1::2], strict=True)}


def _local(value, tz: str) -> str:
    return formats.date_format(value.astimezone(zoneinfo.ZoneInfo(tz)), "DATETIME_FORMAT")


def test_the_history_lists_every_version_newest_first_with_states_people_and_local_dates(world_a):
    world_a.tenant.time_zone = "America/New_York"
    world_a.tenant.save()
    h = write_history(world_a)
    page = world_a.staff_client(Role.ANALYST).get(admin_url(h.v2, "history"))
    assert page.status_code == 200
    html = page.content.decode()
    sections = _sections(html)
    assert list(sections) == [3, 2, 1] and "Times in America/New_York." in html
    states = {n: re.search(r'data-testid="state">([^<]+)<', s).group(1) for n, s in sections.items()}
    assert states == {3: "Draft", 2: "Live", 1: "Retired"}
    pm, owner = world_a.staff[Role.PRODUCT_MANAGER], world_a.staff[Role.OWNER]
    for number, version in ((2, h.v2), (1, h.v1)):
        people = sections[number]
        assert f"drafted by {pm}" in people
        assert f"approved by {owner} {_local(version.approved_at, 'America/New_York')}" in people
        assert admin_url(version, "change") in people
    assert "approved by" not in sections[3] and "(first version)" in sections[1]
    assert "compared with v1 (retired)" in sections[2] and "No difference from v2." in sections[3]
    assert "Retired by" in sections[1] and "replaced by version 2" in sections[1]  # from the audit log


def test_the_diff_shows_the_changed_subject_line_and_escapes_html(world_a):
    h = write_history(world_a)
    html = world_a.staff_client(Role.PRODUCT_MANAGER).get(admin_url(h.v3, "history")).content.decode()
    v2 = _sections(html)[2]
    subject = v2.split('data-testid="diff-subject"')[1].split("</table>")[0]
    assert re.search(r"tw-removed.*?\{\{ offer.tier \}\} for \{\{ account.name \}\}</td>", subject, re.S)
    assert "&lt;b&gt;New&lt;/b&gt; {{ offer.tier }}" in subject and "<b>New</b>" not in html
    body = v2.split('data-testid="diff-html_body"')[1].split("</table>")[0]
    assert "tw-added" in body and "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt;" in body
    assert NEW_HTML_LINE not in html
    assert 'data-testid="diff-text_body"' not in v2  # unchanged parts are not listed


def test_another_tenants_template_id_answers_404(two_tenants):
    a, b = two_tenants
    theirs = write_history(b).v2
    for role in (Role.PRODUCT_MANAGER, Role.OWNER):
        page = a.staff_client(role).get(admin_url(theirs, "history"))
        assert page.status_code == 404 and "offer-sent" not in page.content.decode()
    assert a.staff_client(Role.PRODUCT_MANAGER).get("/admin/messaging/messagetemplate/x1/history/").status_code == 404


def test_a_role_without_template_access_is_refused(world_a, monkeypatch, client):
    template = live_template(world_a.tenant)
    url = admin_url(template, "history")
    # Every role holds 'view' today; a role without it (here the CSM, withdrawn) is refused by the view.
    csm = frozenset(account_models.ROLE_CAPABILITIES[Role.CSM]) - {Capability.VIEW}
    monkeypatch.setitem(account_models.ROLE_CAPABILITIES, Role.CSM, csm)
    page = world_a.staff_client(Role.CSM).get(url)
    assert page.status_code == 404 and template.name not in page.content.decode()
    # Someone with only a pending invitation has no membership yet: the admin sends them to sign in.
    invitee = User.objects.create_user("invited@tenant-a.test", "pw-for-tests-123")
    Membership.all_objects.create(tenant=world_a.tenant, user=invitee, role=Role.PRODUCT_MANAGER, accepted_at=None)
    client.force_login(invitee)
    refused = client.get(url)
    assert refused.status_code == 302 and "/login/" in refused["Location"]


def test_the_change_page_links_to_the_history(world_a):
    h = write_history(world_a)
    html = world_a.staff_client(Role.PRODUCT_MANAGER).get(admin_url(h.v1, "change")).content.decode()
    assert f'href="{admin_url(h.v1, "history")}"' in html


def test_list_template_versions_reads_the_history_in_a_few_queries(world_a, django_assert_max_num_queries):
    h = write_history(world_a)
    with django_assert_max_num_queries(3):
        history = list_template_versions(world_a.tenant, template=h.v1)
    assert [e.template.version for e in history] == [3, 2, 1]
    assert [e.template.state for e in history] == [TemplateState.DRAFT, TemplateState.LIVE, TemplateState.RETIRED]
    assert [c.name for c in history[1].changes] == ["subject", "html_body"]


def test_diff_lines_keeps_a_little_context_and_marks_gaps():
    before = "\n".join(f"line {i}" for i in range(12))
    after = before.replace("line 1\n", "line one\n").replace("line 10", "line ten")
    kinds = [(d.kind, d.text) for d in diff_lines(before, after)]
    assert ("removed", "line 1") in kinds and ("added", "line one") in kinds and ("gap", "⋯") in kinds
    assert ("added", "line ten") in kinds and ("context", "line 5") not in kinds
