"""Reads for the review step: what a catalog change changes and whom it touches, before approving or publishing.

`review_change(tenant, obj=...)` compares a version with the one it replaces (the published
version of the same key, else the newest older version) and says, in words and money:
prices, entitlements, outcomes, add-ons and the other fields that differ; and the impact of
publishing it: licences still holding the version it retires (and their MRR, through the
hook billing registers in catalog.hooks, since catalog may not import billing) and bundles
built on that version (a bundle on a retired tier is no longer shown to customers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from accounts.models import Tenant
from catalog import hooks
from catalog.admin_display import term_rule_lines, volume_rule_lines
from catalog.models import AddOn, Bundle, DiscountPolicy, Entitlement, GovernanceState, Governed, Price, Tier
from catalog.money import format_money
from catalog.services import EDITABLE_FIELDS, M2M_FIELDS
from catalog.templatetags.catalog_money import grant, percent

NONE = "—"
# Compared as their own sections, not as plain fields.
SECTION_FIELDS = {"outcomes", "scenarios", "term_rules", "volume_rules", "compatible_tiers", "addons"}


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


@dataclass
class Section:
    title: str  # "Prices", "Entitlements", "Outcomes", "Add-ons", "Details"
    changes: list[Change] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.changes or self.added or self.removed)


@dataclass(frozen=True)
class BundleImpact:
    bundle: Bundle
    sentence: str


@dataclass
class Impact:
    licences: int = 0
    mrr: list[tuple[str, int]] = field(default_factory=list)  # (currency, minor units), never summed across
    bundles: list[BundleImpact] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)

    @property
    def mrr_display(self) -> str:
        return ", ".join(format_money(amount, currency) for currency, amount in self.mrr) or format_money(0, "USD")


@dataclass
class Review:
    obj: Governed
    previous: Governed | None
    sections: list[Section]
    impact: Impact

    @property
    def changed(self) -> bool:
        return any(not s.empty for s in self.sections)

    @property
    def visible_sections(self) -> list[Section]:
        return [s for s in self.sections if not s.empty]


def previous_version(tenant: Tenant, obj: Governed) -> Governed | None:
    """The version `obj` replaces: the published one of its key, else the newest older version."""
    rows = type(obj).objects.for_tenant(tenant).filter(key=obj.key).exclude(pk=obj.pk)
    published = rows.filter(state=GovernanceState.PUBLISHED).order_by("-version").first()
    return published or rows.filter(version__lt=obj.version).order_by("-version").first()


# --- How values read -------------------------------------------------------------------------


def _value(obj: Model, name: str) -> str:
    value = getattr(obj, name)
    if value is None or value == "":
        return NONE
    if isinstance(value, bool):
        return "Yes" if value else "No"
    display = getattr(obj, f"get_{name}_display", None)
    return str(display()) if callable(display) else str(value)


def price_text(price: Price | None) -> str:
    if price is None:
        return NONE
    return f"{format_money(price.amount, price.currency)} / {'seat / ' if price.per_seat else ''}{price.interval}"


def entitlement_text(entitlement: Entitlement | None) -> str:
    if entitlement is None or not entitlement.enabled:
        return "Not included"
    if entitlement.feature.kind == "boolean":
        return "Included"
    text = grant(entitlement.limit, entitlement.feature.unit)
    if entitlement.limit is not None and entitlement.enforcement == "soft":
        text += f" (soft, warns at {entitlement.soft_limit_percent} %)"
    return text


def _lines_section(title: str, before: list[str], after: list[str]) -> Section:
    return Section(
        title,
        added=[line for line in after if line not in before],
        removed=[line for line in before if line not in after],
    )


# --- Sections --------------------------------------------------------------------------------


def _details(obj: Governed, previous: Governed | None) -> Section:
    section = Section("Details")
    if previous is None:
        return section
    for name in EDITABLE_FIELDS.get(type(obj), ()):
        if name in SECTION_FIELDS or name == "key":
            continue
        before, after = _value(previous, name), _value(obj, name)
        if before != after:
            section.changes.append(Change(obj._meta.get_field(name).verbose_name.capitalize(), before, after))
    return section


def _prices(obj: Tier | AddOn, previous: Tier | AddOn | None) -> Section:
    section = Section("Prices")
    now = {p.interval: p for p in obj.prices.all()}
    then = {p.interval: p for p in previous.prices.all()} if previous is not None else {}
    for interval, label in (("month", "Monthly"), ("year", "Annual")):
        before, after = price_text(then.get(interval)), price_text(now.get(interval))
        if previous is None and after != NONE:
            section.added.append(f"{label}: {after}")
        elif before != after:
            section.changes.append(Change(label, before, after))
    return section


def _entitlements(obj: Tier | AddOn, previous: Tier | AddOn | None) -> Section:
    section = Section("Entitlements")
    now = {e.feature_id: e for e in obj.entitlements.select_related("feature")}
    then = {e.feature_id: e for e in previous.entitlements.select_related("feature")} if previous else {}
    features = {e.feature_id: e.feature for e in [*now.values(), *then.values()]}
    for feature_id, feature in sorted(features.items(), key=lambda kv: (kv[1].sort_order, kv[1].name)):
        before, after = entitlement_text(then.get(feature_id)), entitlement_text(now.get(feature_id))
        if previous is None:
            section.added.append(f"{feature.name}: {after}")
        elif before != after:
            section.changes.append(Change(feature.name, before, after))
    return section


def _related_names(obj: Model, name: str) -> list[str]:
    return sorted({str(getattr(item, "name", item)) for item in getattr(obj, name).all()})


def sections_for(obj: Governed, previous: Governed | None) -> list[Section]:
    sections = [_details(obj, previous)]
    if isinstance(obj, Tier | AddOn):
        sections += [_prices(obj, previous), _entitlements(obj, previous)]  # type: ignore[arg-type]
    if isinstance(obj, Tier):
        sections.append(_lines_section("Outcomes", list(previous.outcomes or []) if previous else [], obj.outcomes))
    for name in M2M_FIELDS.get(type(obj), ()):
        title = "Add-ons" if name == "addons" else "Offered with tiers"
        sections.append(
            _lines_section(title, _related_names(previous, name) if previous else [], _related_names(obj, name))
        )
    if isinstance(obj, Bundle):
        titles = [str(s.get("title", "")) for s in obj.scenarios or [] if isinstance(s, dict)]
        old = [str(s.get("title", "")) for s in (previous.scenarios or [] if previous else []) if isinstance(s, dict)]
        sections.append(_lines_section("Scenarios", old, titles))
    if isinstance(obj, DiscountPolicy):
        sections.append(
            _lines_section(
                "Term rules", term_rule_lines(previous.term_rules) if previous else [], term_rule_lines(obj.term_rules)
            )
        )
        sections.append(
            _lines_section(
                "Volume rules",
                volume_rule_lines(previous.volume_rules) if previous else [],
                volume_rule_lines(obj.volume_rules),
            )
        )
        for name in ("cap_percent", "loyalty_percent"):
            if previous is not None and getattr(previous, name) != getattr(obj, name):
                sections[0].changes.append(
                    Change(
                        obj._meta.get_field(name).verbose_name.capitalize(),
                        percent(getattr(previous, name)),
                        percent(getattr(obj, name)),
                    )
                )
    return sections


# --- Impact ----------------------------------------------------------------------------------


def impact_of(tenant: Tenant, obj: Governed, previous: Governed | None) -> Impact:
    """What publishing `obj` does to what exists: it retires `previous` if that is published."""
    impact = Impact()
    if previous is None or previous.state != GovernanceState.PUBLISHED:
        impact.sentences.append("Nothing is retired: no published version of this item exists yet.")
        return impact
    label = f"{previous.name} v{previous.version}"
    impact.sentences.append(f"Publishing retires {label}: new customers can no longer choose it.")
    if isinstance(previous, Tier):
        impact.licences = hooks.count_holders(tenant, [previous.pk])
        impact.mrr = sorted(hooks.holders_mrr(tenant, [previous.pk]).items())
        if impact.licences:
            impact.sentences.append(
                f"{impact.licences} active licence(s) hold {label} ({impact.mrr_display} MRR). They keep its "
                "entitlements and price until they change plan; nothing is charged or changed for them."
            )
        bundles: Any = Bundle.objects.for_tenant(tenant).filter(tier=previous, state=GovernanceState.PUBLISHED)
    elif isinstance(previous, AddOn):
        bundles = Bundle.objects.for_tenant(tenant).filter(addons=previous, state=GovernanceState.PUBLISHED)
    else:
        bundles = Bundle.objects.none()
    for bundle in bundles.order_by("name", "id").distinct():
        impact.bundles.append(
            BundleImpact(
                bundle,
                f"{bundle.name} is built on {label}; once that is retired the bundle is no longer shown to "
                "customers. Revise the bundle onto the new version.",
            )
        )
    return impact


def review_change(tenant: Tenant, *, obj: Governed) -> Review:
    """The diff against the version `obj` replaces and the impact of publishing it. A few queries."""
    obj = type(obj).objects.for_tenant(tenant).get(pk=obj.pk)
    previous = previous_version(tenant, obj)
    return Review(
        obj=obj, previous=previous, sections=sections_for(obj, previous), impact=impact_of(tenant, obj, previous)
    )
