"""Portal URLs: pages under /portal/ (opaque references only) and the API's /portal-sessions."""

from django.urls import URLPattern, URLResolver, path, re_path

from upgrades.portal import staff, views, views_card, views_proposals
from upgrades.portal.api import PortalSessionViewSet

REF = r"[0-9a-f]{24}"

app_name = "portal"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("compare", views.compare, name="compare"),
    path("talk", views.talk, name="talk"),
    path("feedback", views.feedback, name="feedback"),
    path("card", views_card.card, name="card"),
    path("sign-out", views.sign_out, name="sign-out"),
    re_path(r"^staff/open/(?P<external_id>[A-Za-z0-9_.:@\-]{1,128})$", staff.open_as, name="staff-open"),
    re_path(r"^l/(?P<signed>[A-Za-z0-9_\-:]{20,200})$", views.open_link, name="link"),
    re_path(r"^l/(?P<signed>[A-Za-z0-9_\-:]{20,200})/fresh$", views.fresh_link, name="fresh-link"),
    re_path(rf"^offers/(?P<ref>{REF})$", views.offer_page, name="offer"),
    re_path(rf"^offers/(?P<ref>{REF})/roi$", views.offer_roi, name="offer-roi"),
    re_path(rf"^offers/(?P<ref>{REF})/accept$", views.offer_accept, name="offer-accept"),
    re_path(rf"^offers/(?P<ref>{REF})/status$", views.offer_status, name="offer-status"),
    re_path(rf"^offers/(?P<ref>{REF})/retry$", views.offer_retry, name="offer-retry"),
    re_path(rf"^offers/(?P<ref>{REF})/decline$", views.offer_decline, name="offer-decline"),
    re_path(rf"^offers/(?P<ref>{REF})/trial$", views.trial_start, name="trial-start"),
    re_path(rf"^trials/(?P<ref>{REF})$", views.trial_page, name="trial"),
    re_path(rf"^proposals/(?P<ref>{REF})$", views_proposals.proposal_page, name="proposal"),
    re_path(rf"^proposals/(?P<ref>{REF})/accept$", views_proposals.proposal_accept, name="proposal-accept"),
    re_path(rf"^proposals/(?P<ref>{REF})/status$", views_proposals.proposal_status, name="proposal-status"),
    re_path(rf"^proposals/(?P<ref>{REF})/decline$", views_proposals.proposal_decline, name="proposal-decline"),
    re_path(rf"^proposals/(?P<ref>{REF})/retry$", views_proposals.proposal_retry, name="proposal-retry"),
]

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("portal-sessions", PortalSessionViewSet.as_view({"post": "create"}), name="portal-session-list"),
]
