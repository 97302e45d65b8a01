"""Money and percentage formatting for templates: integer minor units in, text out, no floats.

Money goes through the one formatter, catalog.money.format_money (Babel).
"""

from __future__ import annotations

from decimal import Decimal

from django import template

from catalog.money import format_money

register = template.Library()


@register.filter
def money(amount: int | None, currency: str = "USD", *, whole: bool = False) -> str:
    """12345, 'USD' -> '$123.45' (Babel, in the active locale: catalog.money); drops '.00' only when `whole`."""
    return format_money(amount, currency or "USD", whole=whole)


@register.filter
def money_whole(amount: int | None, currency: str = "USD") -> str:
    """Like `money`, without '.00' on round amounts (headline prices)."""
    return money(amount, currency, whole=True)


@register.filter
def percent(value: Decimal | int | None) -> str:
    """Decimal('16.67') -> '16.67 %', Decimal('20.00') -> '20 %'."""
    if value is None:
        return ""
    normalized = Decimal(value).quantize(Decimal("0.01"))
    text = f"{normalized:f}".rstrip("0").rstrip(".") if "." in f"{normalized:f}" else f"{normalized:f}"
    return f"{text} %"


@register.filter
def grant(value: int | None, unit: str = "") -> str:
    """A limit for display: None -> 'Unlimited', 5000 -> '5,000 API calls'."""
    if value is None:
        return f"Unlimited {unit}".strip()
    return f"{value:,} {unit}".strip()
