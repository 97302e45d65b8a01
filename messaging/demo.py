"""The demo's messaging: settings and the seeded lifecycle templates, live. Idempotent.

Copy speaks plainly: what we saw in their usage, what similar customers got, the price. No jargon,
no countdowns, nothing pre-ticked. The lead wires `seed_messaging_demo(tenant)` into seed_demo.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.services import audited_as, record_audit
from accounts.tenancy import tenant_context
from messaging.models import MessageTemplate, MessagingSettings, TemplateState
from messaging.services.templates import (
    EDITABLE,
    approve_template,
    new_version,
    submit_template,
    update_template,
    validate_template,
)

_EVIDENCE = """<p>Here is what we saw:</p>
<ul>{% for line in evidence %}<li>{{ line }}</li>{% endfor %}</ul>"""
_PRICE = (
    "<p>{{ offer.tier }} costs {{ price.amount }} a {{ price.interval }}{% if price.per_seat %} per seat{% endif %}"
    " ({{ price.total }} in total for your team).</p>"
)

EMAILS: list[dict[str, str]] = [
    {"key": "offer-sent", "purpose": "offer_sent", "name": "Offer: a plan that fits how you work",
     "subject": "{{ account.name }}: {{ offer.tier }} may fit how your team works",
     "html_body": "<p>Hi {{ contact.first_name }},</p>" + _EVIDENCE
     + "<p>{{ similar_customers }}</p>" + _PRICE
     + '<p><a href="{{ offer.url }}">See the offer and what would change</a></p>'
     + "<p>If your current plan suits you, there is nothing to do.</p>"},
    {"key": "offer-reminder", "purpose": "offer_reminder", "name": "Offer reminder",
     "subject": "Your {{ offer.tier }} offer is still open",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>A week ago we suggested {{ offer.tier }} for "
     "{{ account.name }}.</p>" + _EVIDENCE + _PRICE
     + '<p><a href="{{ offer.url }}">Look at it again</a>, or ignore this and nothing changes.</p>'},
    {"key": "trial-started", "purpose": "trial_started", "name": "Trial day 1",
     "subject": "Your {{ trial.tier }} trial has started",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>{{ account.name }} can use everything in {{ trial.tier }} "
     "until {{ trial.ends_on }}. Your plan and your bill don't change unless you choose to.</p>"
     '<p><a href="{{ portal_url }}">See what the trial includes</a></p>'},
    {"key": "trial-midpoint", "purpose": "trial_midpoint", "name": "Mid-trial early wins",
     "subject": "Halfway through your {{ trial.tier }} trial: what you've done so far",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>So far in your trial:</p>"
     "<ul>{% for win in wins %}<li>{{ win }}</li>{% endfor %}</ul>"
     '<p><a href="{{ portal_url }}">See your usage</a></p>'},
    {"key": "trial-ending", "purpose": "trial_ending", "name": "Trial ending in 2 days",
     "subject": "Your {{ trial.tier }} trial ends on {{ trial.ends_on }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>Your trial of {{ trial.tier }} ends on {{ trial.ends_on }}. "
     "If you keep it, it costs {{ price.amount }} a {{ price.interval }}. If you don't, you go back to your current "
     'plan and keep all your data.</p><p><a href="{{ portal_url }}">Compare the two plans</a></p>'},
    {"key": "trial-ended", "purpose": "trial_ended", "name": "Trial ended",
     "subject": "Your {{ trial.tier }} trial has ended",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>Your trial ended and {{ account.name }} is back on its "
     "current plan, with all its data. If you'd like {{ trial.tier }} later, it is "
     '{{ price.amount }} a {{ price.interval }}.</p><p><a href="{{ portal_url }}">See your plan</a></p>'},
    {"key": "renewal-90", "purpose": "renewal_90", "name": "Renewal in 90 days",
     "subject": "{{ account.name }} renews on {{ renewal.on }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>Your {{ renewal.tier }} plan renews on {{ renewal.on }} "
     "for {{ renewal.amount }}.</p>" + _EVIDENCE
     + '<p>We put together a proposal that fits this usage: <a href="{{ proposal.url }}">{{ proposal.title }}</a>.'
     " It is a suggestion; renewing as you are is fine too.</p>"},
    {"key": "renewal-60", "purpose": "renewal_60", "name": "Renewal in 60 days",
     "subject": "Your renewal on {{ renewal.on }}: the options",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>Your plan renews on {{ renewal.on }} for {{ renewal.amount }}."
     ' The proposal <a href="{{ proposal.url }}">{{ proposal.title }}</a> costs {{ price.amount }} a '
     "{{ price.interval }}.</p>"},
    {"key": "renewal-30", "purpose": "renewal_30", "name": "Renewal in 30 days",
     "subject": "{{ account.name }} renews on {{ renewal.on }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>Your {{ renewal.tier }} plan renews on {{ renewal.on }} for "
     '{{ renewal.amount }}. <a href="{{ portal_url }}">Review your plan</a> if anything has changed.</p>'},
    {"key": "decline-follow-up", "purpose": "decline_follow_up", "name": "After a decline",
     "subject": "Thanks for telling us about {{ offer.tier }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>You told us {{ offer.tier }} wasn't right for "
     "{{ account.name }}, and that's fine. If your needs change, the details are "
     '<a href="{{ offer.url }}">here</a>. We won\'t send more about it unless you ask.</p>'},
    {"key": "feedback-answered", "purpose": "decline_follow_up", "name": "We changed what you told us about",
     "subject": "You told us about {{ offer.tier }}: here is what changed",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>When {{ account.name }} looked at {{ offer.tier }}, you "
     "told us what didn't fit. We have changed it: {{ offer.title }}.</p><p>Thank you for telling us. Nothing "
     "changes on your plan unless you choose to.</p>"},
    {"key": "payment-needed", "purpose": "payment_needed", "name": "Payment needed",
     "subject": "We couldn't take the payment for invoice {{ invoice.number }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>The payment of {{ invoice.amount }} for invoice "
     '{{ invoice.number }} didn\'t go through. <a href="{{ portal_url }}">Update your payment details</a>.</p>'},
    {"key": "receipt", "purpose": "receipt", "name": "Receipt",
     "subject": "Receipt for {{ invoice.number }}: {{ invoice.amount }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>We received {{ invoice.amount }} on {{ invoice.paid_on }} for "
     'invoice {{ invoice.number }}. <a href="{{ invoice.url }}">View the invoice</a>.</p>'},
    {"key": "proposal-link", "purpose": "proposal_link", "name": "Proposal from your account manager",
     "subject": "A proposal for {{ account.name }}: {{ proposal.title }}",
     "html_body": "<p>Hi {{ contact.first_name }},</p><p>{{ sender.name }} put together a proposal for "
     "{{ account.name }}. It shows each option and every invoice it would mean, before you decide anything.</p>"
     '<p><a href="{{ proposal.url }}">Open the proposal</a></p>'
     "<p>The link opens your portal once and works until {{ proposal.expires_on }}.{% if sender.email %} If it "
     "has run out, write to {{ sender.email }} for a fresh one.{% endif %}</p>"
     "<p>It is a suggestion: if your current plan suits you, there is nothing to do.</p>"},
]  # fmt: skip

PROMPTS: list[dict[str, str]] = [
    {"key": "gate-sso", "purpose": "feature_gate", "name": "Locked feature prompt", "channel": "in_app",
     "placement": "feature_gate", "title": "{{ feature.name }} is part of {{ offer.tier }}",
     "body": "Your team tried {{ feature.name }} this week. {{ offer.tier }} includes it for {{ price.amount }} "
     "a {{ price.interval }}.",
     "cta_label": "See what {{ offer.tier }} includes", "cta_url": "{{ offer.url }}"},
]  # fmt: skip


@transaction.atomic
def seed_messaging_demo(tenant: Tenant) -> list[MessageTemplate]:
    """Settings and every seeded template live (version 1), validated like a PM's. Safe to run again."""
    seeded = []
    with tenant_context(tenant):
        MessagingSettings.objects.for_tenant(tenant).get_or_create(
            tenant=tenant, defaults={"from_name": tenant.name, "brand_colour": "#1F6FEB"}
        )
        for spec in EMAILS + PROMPTS:
            versions = MessageTemplate.objects.for_tenant(tenant).filter(key=spec["key"], variant="a")
            existing = versions.filter(state=TemplateState.LIVE).first() or versions.order_by("-version").first()
            if existing is not None:
                seeded.append(existing)
                continue
            template = MessageTemplate(tenant=tenant, **{k: v for k, v in spec.items() if k in EDITABLE})
            validate_template(template)
            now = timezone.now()
            template.state, template.approved_at, template.live_at = TemplateState.LIVE, now, now
            template.save()
            record_audit(tenant, actor="demo-seed", action="messagetemplate.seeded", obj=template,
                         after={"key": template.key, "state": template.state})  # fmt: skip
            seeded.append(template)
    return seeded


# A second version of one template, edited by one product manager and approved by another, so the
# template's History page has a change to show (the subject said when, not what the email is about).
REVISION = {
    "key": "renewal-90",
    "subject": "Your {{ renewal.tier }} plan renews on {{ renewal.on }}: what you used this year",
}


@transaction.atomic
def seed_template_revision(tenant: Tenant, *, author: User, approver: User) -> MessageTemplate | None:
    """Version 2 of REVISION's template through the real governance (draft, submitted, a second person
    approves; version 1 retires). Nothing when the template has any later version already, whoever made it.
    As in the catalog's seed, drafted-by and approved-by name the two people (four eyes holds), but the audit
    log credits the seed ("demo-seed"), not them."""
    with tenant_context(tenant), audited_as("demo-seed"):
        versions = MessageTemplate.objects.for_tenant(tenant).filter(key=REVISION["key"], variant="a")
        if versions.filter(version__gt=1).exists():
            return None
        first = versions.filter(version=1, state=TemplateState.LIVE).first()
        if first is None:
            return None
        draft = new_version(tenant, template=first, actor=author)
        draft = update_template(tenant, template=draft, actor=author, subject=REVISION["subject"])
        draft = submit_template(tenant, template=draft, actor=author)
        return approve_template(tenant, template=draft, actor=approver)
