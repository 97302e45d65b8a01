"""The offers demo: live settings approved by a second person, offers the engine built from fired signals
in every state the services can reach, a trial with early wins; idempotent, credited to demo-seed."""

from __future__ import annotations

from accounts.demo import seed_tenant
from accounts.models import AuditEntry
from billing.demo import seed_billing
from billing.models import License
from catalog.demo import seed_catalogs
from upgrades.offers.demo import SEED_ACTOR, seed_offers_demo
from upgrades.offers.models import Feedback, Offer, OfferEvent, OfferSettings, OfferState, SettingsState, Trial
from upgrades.rules.demo import seed_rules
from usage.demo import seed_usage

ACCOUNTS = 60


def seed(accounts: int = ACCOUNTS):
    demo = seed_tenant(slug="acme", name="Acme", domain="acme.test", account_count=accounts, seed=7)
    other = seed_tenant(slug="globex", name="Globex", domain="globex.test", account_count=5, seed=11)
    seed_catalogs(demo, other)
    seed_billing(demo, other)
    seed_usage(demo, other)
    seed_rules(demo, other)
    return demo, seed_offers_demo(demo.tenant)


def picture(tenant) -> dict:
    return {
        "offers": sorted(Offer.objects.filter(tenant=tenant).values_list("pk", "state")),
        "events": OfferEvent.objects.filter(tenant=tenant).count(),
        "settings": OfferSettings.objects.filter(tenant=tenant).count(),
        "trials": Trial.objects.filter(tenant=tenant).count(),
        "feedback": Feedback.objects.filter(tenant=tenant).count(),
        "audit": AuditEntry.objects.filter(tenant=tenant).count(),
    }


def test_without_stripe_the_demo_has_every_state_but_payment_and_seeding_twice_changes_nothing(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, result = seed()
    tenant = demo.tenant
    live = OfferSettings.objects.get(tenant=tenant, state=SettingsState.LIVE)
    assert live.created_by.email == "pm@acme.test" and live.approved_by.email == "pm2@acme.test"
    assert {d["kind"] for d in live.value_model} >= {"hours_saved", "incidents_avoided", "revenue_at_risk"}
    states = set(Offer.objects.filter(tenant=tenant).values_list("state", flat=True))
    assert states >= {OfferState.AWAITING_REVIEW, OfferState.SENT, OfferState.VIEWED, OfferState.DECLINED,
                      OfferState.EXPIRED, OfferState.WITHDRAWN}, states  # fmt: skip
    for offer in Offer.objects.filter(tenant=tenant):
        assert offer.signal_id is not None and offer.evidence.get("sentence"), offer  # built by the engine
        assert offer.options and offer.quote and offer.quote["lines"]
    awaiting = Offer.objects.get(tenant=tenant, state=OfferState.AWAITING_REVIEW)
    assert awaiting.discount_approval_needed and awaiting.discount_approved_at is None
    declined = Offer.objects.get(tenant=tenant, state=OfferState.DECLINED)
    assert Feedback.objects.get(offer=declined).reason_code == "too_expensive"
    trial = result["trial"]
    assert trial is not None and trial.state == "active" and trial.wins.exists()
    assert not Offer.objects.filter(tenant=demo.tenant).exclude(state__in=[s for s in OfferState]).exists()
    # nobody but the seed is credited
    people = set(AuditEntry.objects.filter(tenant=tenant, action__startswith="offer").exclude(actor=None)
                 .values_list("actor__email", flat=True))  # fmt: skip
    assert people == set()
    assert set(AuditEntry.objects.filter(tenant=tenant, action__startswith="offer").values_list(
        "actor_label", flat=True)) == {SEED_ACTOR}  # fmt: skip
    before = picture(tenant)
    seed_offers_demo(tenant)
    assert picture(tenant) == before


def test_the_demo_is_idempotent_after_people_changed_things(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, result = seed()
    tenant = demo.tenant
    sent = Offer.objects.get(pk=result["slots"]["sent"])
    from upgrades.offers.services.review import withdraw_offer

    withdraw_offer(tenant, offer=sent, actor=demo.tenant.memberships.get(user__email="csm@acme.test").user)
    from accounts.models import User
    from upgrades.offers.services import settings as settings_services

    pm2 = User.objects.get(email="pm2@acme.test")
    settings_services.create_settings_draft(tenant, actor=pm2, expiry_days=30)  # a PM starts changing the settings
    before = picture(tenant)
    seed_offers_demo(tenant)
    assert picture(tenant) == before


def test_no_demo_licence_holds_more_seats_than_its_tier_allows(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, _ = seed()
    from catalog.models import Entitlement, FeatureKind

    for lic in License.objects.filter(tenant=demo.tenant).select_related("tier"):
        limit = Entitlement.objects.filter(tier=lic.tier, feature__kind=FeatureKind.SEATS).values_list(
            "limit", flat=True).first()  # fmt: skip
        assert limit is None or lic.seats <= limit, lic
