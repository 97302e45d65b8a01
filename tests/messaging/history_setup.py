"""Three versions of one email template written through the services, as people would: v1 drafted by the
PM and approved by the owner, then retired when v2 (a new subject with markup in it, one more HTML
line) went live; v3 is an open draft by the PM. Shared by the history tests and the browser test."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role
from messaging.models import MessageTemplate
from messaging.services import templates as services
from tests.messaging.conftest import OFFER_HTML

OLD_SUBJECT = "{{ offer.tier }} for {{ account.name }}"
NEW_SUBJECT = "<b>New</b> {{ offer.tier }} for {{ account.name }}"
NEW_HTML_LINE = "<script>alert('hi')</script>"


@dataclass
class History:
    v1: MessageTemplate
    v2: MessageTemplate
    v3: MessageTemplate


def write_history(world) -> History:
    tenant, pm, owner = world.tenant, world.staff[Role.PRODUCT_MANAGER], world.staff[Role.OWNER]
    v1 = services.create_template(tenant, actor=pm, key="offer-sent", variant="a", name="Offer", purpose="offer_sent",
                                  channel="email", subject=OLD_SUBJECT, html_body=OFFER_HTML)  # fmt: skip
    services.submit_template(tenant, template=v1, actor=pm)
    services.approve_template(tenant, template=v1, actor=owner)
    v2 = services.new_version(tenant, template=v1, actor=pm)
    v2 = services.update_template(tenant, template=v2, actor=pm, subject=NEW_SUBJECT,
                                  html_body=OFFER_HTML + "\n" + NEW_HTML_LINE)  # fmt: skip
    services.submit_template(tenant, template=v2, actor=pm)
    v2 = services.approve_template(tenant, template=v2, actor=owner)
    v3 = services.new_version(tenant, template=v2, actor=pm)
    return History(*(MessageTemplate.objects.get(pk=t.pk) for t in (v1, v2, v3)))
