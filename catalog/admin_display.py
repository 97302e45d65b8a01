"""Display helpers shared by the catalog and billing admin pages: money, dates and JSON lists as people read them.

Money stays integer minor units until the last step (`catalog_money.money`); dates are shown in
the active time zone, which the staff middleware sets to the tenant's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from catalog.templatetags.catalog_money import money, percent

EMPTY = "—"
# Class names the admin stylesheets key on: money right-aligned and never wrapped.
MONEY_CLASS = "tw-money"


def money_text(amount: int | None, currency: str) -> str:
    """Integer minor units -> '$1,234.50' / '1,234.50 SEK'; an em dash for no amount."""
    return EMPTY if amount is None else money(amount, currency)


def money_cell(amount: int | None, currency: str, *, title: str = "") -> SafeString:
    """Money for a list or read-only field: one unbreakable piece of text."""
    if title:
        return format_html('<span class="{}" title="{}">{}</span>', MONEY_CLASS, title, money_text(amount, currency))
    return format_html('<span class="{}">{}</span>', MONEY_CLASS, money_text(amount, currency))


def parse_instant(value: Any) -> datetime | None:
    """A datetime, or an ISO-8601 string as stored in JSON (quote lines); None when neither."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    return None


def local_date(value: datetime | date | None, fmt: str = "DATE_FORMAT") -> str:
    """'19 Dec 2026' in the active (tenant's) time zone; an em dash for none."""
    if value is None:
        return EMPTY
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return formats.date_format(value, fmt)


def local_datetime(value: datetime | None) -> str:
    """'19 Dec 2026, 12:46' in the active (tenant's) time zone: the one date style (config/formats)."""
    if value is None:
        return EMPTY
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def bullet_list(items: Iterable[Any]) -> SafeString | str:
    """A read-only JSON list of strings as a bulleted list (escaped)."""
    shown = [str(item) for item in items or [] if str(item).strip()]
    if not shown:
        return EMPTY
    return format_html('<ul class="tw-bullets">{}</ul>', format_html_join("", "<li>{}</li>", ((s,) for s in shown)))


def scenario_list(scenarios: Iterable[Mapping[str, Any]]) -> SafeString | str:
    """Bundle scenarios: the title in bold, the story after it."""
    rows = [(s.get("title", ""), s.get("story", "")) for s in scenarios or [] if isinstance(s, Mapping)]
    if not rows:
        return EMPTY
    return format_html(
        '<ul class="tw-bullets">{}</ul>',
        format_html_join("", "<li><strong>{}</strong><br>{}</li>", rows),
    )


def term_rule_lines(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """[{"years": 2, "percent": "10"}] -> ['2 years: 10 %']."""
    lines = []
    for rule in rules or []:
        years = int(rule.get("years", 0))
        lines.append(f"{years} year{'s' if years != 1 else ''}: {percent(rule.get('percent', 0))}")
    return lines


def volume_rule_lines(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """[{"min_seats": 50, "max_seats": 199, "percent": "5"}] -> ['50–199 seats: 5 %'] ('200+ seats' when open)."""
    lines = []
    for rule in rules or []:
        low, high = rule.get("min_seats"), rule.get("max_seats")
        seats = f"{low}+" if high is None else f"{low}–{high}"
        lines.append(f"{seats} seats: {percent(rule.get('percent', 0))}")
    return lines
