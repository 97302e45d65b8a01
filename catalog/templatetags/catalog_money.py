"""Money and percentage formatting for catalog pages: integer minor units in, text out, no floats."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

# ISO 4217 currencies without minor units (amounts are whole units already).
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "CHF": "CHF ", "INR": "₹"}


@register.filter
def money(amount: int | None, currency: str = "USD", *, whole: bool = False) -> str:
    """12345, 'USD' -> '$123.45'; drops '.00' only when `whole` is asked for."""
    if amount is None:
        return ""
    currency = (currency or "USD").upper()
    symbol = SYMBOLS.get(currency)
    sign = "-" if amount < 0 else ""
    amount = abs(int(amount))
    if currency in ZERO_DECIMAL:
        text = f"{amount:,}"
    else:
        units, cents = divmod(amount, 100)
        text = f"{units:,}" if whole and cents == 0 else f"{units:,}.{cents:02d}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


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
