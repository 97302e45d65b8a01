"""The offer pages over offers the real engine built (the demo's): every state renders with its evidence,
options, quote and ROI; "Make an offer now" calls build_offer; the over-cap discount waits for the owner."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from accounts.models import User
from billing.models import License
from tests.upgrades.offers.test_demo import seed
from upgrades.offers.models import Offer, OfferState


def staff(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def test_every_demo_offer_page_renders_what_the_engine_and_pricing_wrote(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, result = seed()
    analyst = staff("analyst@acme.test")
    for offer in Offer.objects.filter(tenant=demo.tenant):
        answer = analyst.get(reverse("admin:upgrades_offer_change", args=[offer.pk]))
        assert answer.status_code == 200, offer
        page = answer.content.decode()
        assert offer.evidence["sentence"].replace("'", "&#x27;") in page
        assert page.count('data-testid="option"') == len(offer.options)
        assert page.count('data-testid="quote-line"') == len(offer.quote["lines"])
        if offer.roi:
            assert offer.roi["drivers"][0]["label"] in page
    listing = analyst.get(reverse("admin:upgrades_offer_changelist")).content.decode()
    for offer in Offer.objects.filter(tenant=demo.tenant):
        assert reverse("admin:upgrades_offer_change", args=[offer.pk]) in listing
    by_kind = analyst.get(reverse("admin:upgrades_offer_changelist"), {"signal__kind": "trial_candidate"})
    for offer in Offer.objects.filter(tenant=demo.tenant).select_related("signal"):
        shown = reverse("admin:upgrades_offer_change", args=[offer.pk]) in by_kind.content.decode()
        assert shown == (offer.signal.kind == "trial_candidate"), offer
    trial = result["trial"]
    page = analyst.get(reverse("admin:upgrades_trial_change", args=[trial.pk])).content.decode()
    assert 'data-testid="win"' in page and "left of" in page
    settings_page = analyst.get(reverse("admin:upgrades_offersettings_change", args=[result["settings"].pk]))
    assert "needs approval per offer" in settings_page.content.decode()


def test_the_owner_approves_the_over_cap_discount_and_the_offer_is_sent(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, result = seed()
    offer = Offer.objects.get(pk=result["slots"]["awaiting_review"])
    act = reverse("admin:upgrades_offer_act", args=[offer.pk])
    assert staff("csm@acme.test").post(act, {"verb": "approve_discount"}).status_code == 403
    staff("owner@acme.test").post(act, {"verb": "approve_discount"})
    offer.refresh_from_db()
    assert offer.discount_approved_by.email == "owner@acme.test" and offer.state == OfferState.SENT


def test_make_an_offer_now_builds_one_with_the_engine_and_asking_again_shows_the_same(db, settings):
    settings.STRIPE_API_BASE = ""
    demo, _ = seed()
    taken = set(Offer.objects.filter(tenant=demo.tenant).values_list("account_id", flat=True))
    csm = staff("csm@acme.test")
    made = None
    for lic in License.objects.filter(tenant=demo.tenant).exclude(price=None).exclude(account_id__in=taken)[:15]:
        answer = csm.post(reverse("admin:upgrades_offer_make"), {"account": lic.account_id})
        if answer.status_code == 302:
            made = Offer.objects.get(tenant=demo.tenant, account_id=lic.account_id)
            assert answer["Location"] == reverse("admin:upgrades_offer_change", args=[made.pk])
            break
        assert "errorlist" in answer.content.decode() or "error" in answer.content.decode()
    assert made is not None and made.created_by_label == "csm@acme.test" and made.evidence["sentence"]
    again = csm.post(reverse("admin:upgrades_offer_make"), {"account": made.account_id})
    assert again.status_code == 302
    assert Offer.objects.filter(tenant=demo.tenant, account_id=made.account_id).count() == 1
