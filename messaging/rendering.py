"""Templates in a Jinja2 sandbox: the variables each purpose may use, validation at save, rendering.

Hazard: template text is written by tenant staff, so it is untrusted code. It runs only in
`ImmutableSandboxedEnvironment` (no attribute starting with `_`, no mutation of the context, ranges
capped), HTML autoescaped; anything the sandbox refuses is a ValidationError at save time, found by
rendering with sample values, never a surprise at send time.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import jinja2
from django.core.exceptions import ValidationError
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

# Every template may use these (filled in by messaging itself from the contact, account and settings).
COMMON_VARIABLES: dict[str, str] = {
    "contact": "The person: contact.name, contact.first_name, contact.email.",
    "account": "Their company: account.name, account.external_id, account.industry.",
    "brand": "Your branding: brand.name, brand.logo_url, brand.colour.",
    "preferences_url": "Their email preferences page (no sign-in needed).",
    "unsubscribe_url": "One-click unsubscribe from upgrade messages.",
}

# The variables the orchestration passes as `context`, per purpose, with the sample used for previews.
_OFFER = {"title": "Team plan for Acme", "tier": "Team", "url": "https://example.com/portal/offer/1"}
_PRICE = {"amount": "$49.00", "interval": "month", "per_seat": True, "total": "$490.00"}
_EVIDENCE = ["You used 9,412 of your 10,000 API calls last month.", "Your team hit the SSO gate 14 times this week."]
_SIMILAR = "Teams your size who moved to Team cut their time to report by about a third."
_TRIAL = {"tier": "Team", "started_on": "1 Dec 2026", "ends_on": "15 Dec 2026", "days_total": 14}
_RENEWAL = {"on": "1 Mar 2027", "tier": "Starter", "amount": "$1,200.00"}
_PROPOSAL = {"title": "Renewal with Team", "url": "https://example.com/portal/proposal/1"}
_INVOICE = {"number": "INV-0042", "amount": "$490.00", "paid_on": "1 Dec 2026", "url": "https://example.com/inv/42"}
_PORTAL = "https://example.com/portal/s/abc"
_SENT_PROPOSAL = {"title": "Business for Acme", "url": "https://example.com/portal/l/abc", "expires_on": "8 Dec 2026"}
_SENDER = {"name": "Sam Lee", "email": "sam@vendor.example"}

VARIABLES: dict[str, dict[str, tuple[str, Any]]] = {
    "offer_sent": {
        "offer": ("The offer: offer.title, offer.tier, offer.url.", _OFFER),
        "price": ("What it costs: price.amount, price.interval, price.total.", _PRICE),
        "evidence": ("Sentences saying what we saw in their usage (a list).", _EVIDENCE),
        "similar_customers": ("What similar customers achieved (one sentence).", _SIMILAR),
        "portal_url": ("A signed link to their portal.", _PORTAL),
    },
    "trial_started": {
        "trial": ("The trial: trial.tier, trial.started_on, trial.ends_on, trial.days_total.", _TRIAL),
        "portal_url": ("A signed link to their portal.", _PORTAL),
    },
    "trial_midpoint": {
        "trial": ("The trial: trial.tier, trial.started_on, trial.ends_on.", _TRIAL),
        "wins": ("What they did with the trial so far (a list of sentences).", ["You set up SSO for 12 people."]),
        "portal_url": ("A signed link to their portal.", _PORTAL),
    },
    "renewal_90": {
        "renewal": ("The renewal: renewal.on, renewal.tier, renewal.amount.", _RENEWAL),
        "proposal": ("The upgrade proposal, if any: proposal.title, proposal.url.", _PROPOSAL),
        "evidence": ("Sentences saying what we saw in their usage (a list).", _EVIDENCE),
        "price": ("What the proposal costs: price.amount, price.interval, price.total.", _PRICE),
        "portal_url": ("A signed link to their portal.", _PORTAL),
    },
    "payment_needed": {
        "invoice": ("The invoice: invoice.number, invoice.amount, invoice.url.", _INVOICE),
        "portal_url": ("A signed link to their portal.", _PORTAL),
    },
    "feature_gate": {
        "feature": ("The locked feature: feature.name.", {"name": "Single sign-on"}),
        "offer": ("The offer: offer.title, offer.tier, offer.url.", _OFFER),
        "price": ("What it costs: price.amount, price.interval, price.total.", _PRICE),
        "portal_url": ("A signed link to their portal.", _PORTAL),
    },
}
VARIABLES["proposal_link"] = {
    "proposal": (
        "The proposal: proposal.title, proposal.url (a signed link that opens it once), proposal.expires_on.",
        _SENT_PROPOSAL,
    ),
    "sender": ("The account manager who sent it: sender.name, sender.email.", _SENDER),
    "portal_url": ("A signed link to their portal (the proposal's link).", _PORTAL),
}
VARIABLES["offer_reminder"] = VARIABLES["offer_sent"]
VARIABLES["decline_follow_up"] = VARIABLES["offer_sent"]
VARIABLES["trial_ending"] = {**VARIABLES["trial_started"], "price": VARIABLES["offer_sent"]["price"]}
VARIABLES["trial_ended"] = VARIABLES["trial_ending"]
VARIABLES["renewal_60"] = VARIABLES["renewal_90"]
VARIABLES["renewal_30"] = VARIABLES["renewal_90"]
VARIABLES["receipt"] = VARIABLES["payment_needed"]


def allowed_variables(purpose: str) -> dict[str, str]:
    """name -> description of what a template of `purpose` may use."""
    own = {name: description for name, (description, _sample) in VARIABLES.get(purpose, {}).items()}
    return {**COMMON_VARIABLES, **own}


def sample_context(purpose: str) -> dict[str, Any]:
    """The purpose's variables with sample values (previews and validation fill in the rest)."""
    return {name: sample for name, (_description, sample) in VARIABLES.get(purpose, {}).items()}


@functools.cache
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=jinja2.StrictUndefined)


def environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    return _environment(html)


@dataclass(frozen=True)
class Part:
    field: str  # the model field the text came from
    source: str
    html: bool


def check_part(part: Part, *, purpose: str, context: dict[str, Any]) -> dict[str, list[str]]:
    """Errors of one template text: syntax, variables its purpose doesn't offer, sandbox refusals."""
    env = environment(html=part.html)
    try:
        ast = env.parse(part.source)
    except jinja2.TemplateSyntaxError as exc:
        return {part.field: [f"Syntax error on line {exc.lineno}: {exc.message}."]}
    allowed = allowed_variables(purpose)
    unknown = sorted(meta.find_undeclared_variables(ast) - set(allowed))
    if unknown:
        names = ", ".join(unknown)
        offered = ", ".join(sorted(allowed))
        noun = "variable" if len(unknown) == 1 else "variables"
        return {part.field: [f"Unknown {noun} {names}: a {purpose} template may use {offered}."]}
    try:
        env.from_string(part.source).render(context)
    except SecurityError as exc:
        return {part.field: [f"Not allowed in a template: {exc}."]}
    except jinja2.UndefinedError as exc:
        return {part.field: [f"{exc}."]}
    except Exception as exc:  # a filter on the wrong type etc.: still the author's template
        return {part.field: [f"This template fails with the sample values: {exc}."]}
    return {}


def validate_parts(parts: list[Part], *, purpose: str, context: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for part in parts:
        if part.source:
            errors.update(check_part(part, purpose=purpose, context=context))
    if errors:
        raise ValidationError(errors)


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> jinja2.Template:
    return environment(html=html).from_string(source)


def render(source: str, context: dict[str, Any], *, html: bool) -> str:
    """Render one text. Raises jinja2 errors (UndefinedError, SecurityError) for the caller to record.

    Compiled templates are cached by their source (a new version is new source), so 10,000 sends of one
    template compile it once per process."""
    if not source:
        return ""
    return _compiled(source, html).render(context)


# --- plain text from HTML -------------------------------------------------------------------------

_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr", "blockquote", "section"}


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._href: list[str | None] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self._skip += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag == "a" and self._href:
            href = self._href.pop()
            if href and not href.startswith(("mailto:", "#")):
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text part: paragraphs, list items, and each link's URL after its words."""
    maker = _TextMaker()
    maker.feed(html)
    maker.close()
    text = "".join(maker.out)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
