"""Portal writes that aren't the offer lifecycle's: asking for a person, and the short survey."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.mail import send_mail
from django.db import transaction

from accounts.errors import InvalidInput
from accounts.models import Contact, CustomerAccount, Tenant
from accounts.services import record_audit
from upgrades.offers.models import Feedback, FeedbackKind, Offer


def _score(name: str, value: object, errors: dict[str, list[str]]) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if not 1 <= number <= 5:
        errors[name] = ["Choose 1 to 5."]
        return None
    return number


def request_person(
    tenant: Tenant, *, account: CustomerAccount, contact: Contact | None, offer: Offer | None, text: str = ""
) -> Feedback:
    """A request to talk to the account's CSM (the offer attached): stored as Feedback, the CSM emailed."""
    text = (text or "").strip()
    if len(text) > 4000:
        raise InvalidInput("Invalid request.", details={"text": ["At most 4,000 characters."]})
    feedback = Feedback.objects.create(
        tenant=tenant,
        account=account,
        offer=offer,
        contact=contact,
        kind=FeedbackKind.TALK_TO_PERSON,
        text=text,
        source="portal",
    )
    record_audit(tenant, actor="portal", action="portal.talk_to_person", obj=account, after={"feedback": feedback.pk})
    csm = account.assigned_csm
    if csm is not None and csm.email:
        who = contact.email if contact is not None else "a contact"
        about = f" about the offer of {offer.target_key}" if offer is not None else ""
        body = f"{account.name} ({who}) asked to talk to a person{about}.\n\n{text}".strip()
        transaction.on_commit(
            lambda: send_mail(
                f"{account.name} asked to talk to you",
                body,
                django_settings.DEFAULT_FROM_EMAIL,
                [csm.email],
                fail_silently=True,
            )
        )
    return feedback


def record_survey(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    contact: Contact | None,
    offer: Offer | None,
    satisfaction: object,
    perceived_value: object,
    friction: object,
    text: str = "",
) -> Feedback:
    errors: dict[str, list[str]] = {}
    scores = {
        "satisfaction": _score("satisfaction", satisfaction, errors),
        "perceived_value": _score("perceived_value", perceived_value, errors),
        "friction": _score("friction", friction, errors),
    }
    text = (text or "").strip()
    if len(text) > 4000:
        errors["text"] = ["At most 4,000 characters."]
    if not errors and all(v is None for v in scores.values()) and not text:
        errors["satisfaction"] = ["Answer at least one question."]
    if errors:
        raise InvalidInput("Invalid answers.", details=errors)
    return Feedback.objects.create(
        tenant=tenant,
        account=account,
        offer=offer,
        contact=contact,
        kind=FeedbackKind.SURVEY,
        text=text,
        source="portal",
        **scores,
    )
