"""The one money formatter and parser: integer minor units + an ISO 4217 code <-> text people read.

Formatting is Babel's (CLDR data): symbol, grouping and decimals follow the currency and the
locale, so '$1,234.50', '1.234,50 €' and '¥1,235' all come from one place. The exponent (how
many minor units make one unit: 2 for USD, 0 for JPY, 3 for BHD) is ISO 4217's, also from Babel.
Amounts never pass through a float: Decimal is scaled by a power of ten.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, parse_decimal
from django.utils import translation

DEFAULT_LOCALE = "en"


def current_locale() -> str:
    """The active Django language as a Babel locale ('en-us' -> 'en_US'); 'en' when none is active."""
    language = translation.get_language() or DEFAULT_LOCALE
    name = translation.to_locale(language)
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        return DEFAULT_LOCALE
    return name


def exponent(currency: str) -> int:
    """Digits after the decimal point in `currency` (ISO 4217 minor units): USD 2, JPY 0, BHD 3."""
    return int(get_currency_precision((currency or "USD").upper()))


def to_major(amount: int, currency: str) -> Decimal:
    """2900 USD -> Decimal('29.00'); exact, no float."""
    places = exponent(currency)
    return (Decimal(int(amount)) / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places))


def to_minor(value: Decimal | str | int, currency: str) -> int:
    """Decimal('29.00') USD -> 2900. Refuses (ValueError) more decimals than the currency has."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount.") from exc
    if not number.is_finite():
        raise ValueError(f"{value!r} is not an amount.")
    places = exponent(currency)
    scaled = number.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(
            f"{currency.upper()} has {places} decimal place{'s' if places != 1 else ''}"
            if places
            else f"{currency.upper()} has no minor units: enter a whole amount"
        )
    return int(scaled)


def parse_amount(text: str, currency: str, *, locale: str | None = None) -> int:
    """What a person typed ('29', '29.00', '1,234.50') -> minor units; ValueError with a readable reason."""
    cleaned = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    for sign in ("$", "€", "£", "¥", (currency or "").upper()):
        if sign:
            cleaned = cleaned.replace(sign, "")
    if not cleaned:
        raise ValueError("Enter an amount.")
    try:
        number = parse_decimal(cleaned, locale=locale or current_locale(), strict=True)
    except Exception:  # Babel raises NumberFormatError (a ValueError) or InvalidOperation
        try:
            number = Decimal(cleaned)
        except InvalidOperation as exc:
            raise ValueError(f"“{text}” is not an amount: write it like 29.00.") from exc
    return to_minor(number, currency)


def format_money(amount: int | None, currency: str, *, locale: str | None = None, whole: bool = False) -> str:
    """12345, 'USD' -> '$123.45' in the locale (default: the active one, else 'en'); '' for None.

    `whole` drops the decimals of a round amount ('$29' in a headline price), never of '$29.50'.
    """
    if amount is None:
        return ""
    code = (currency or "USD").upper()
    major = to_major(int(amount), code)
    loc = locale or current_locale()
    if whole and major == major.to_integral_value():
        pattern = Locale.parse(loc).currency_formats["standard"].pattern
        no_decimals = ";".join(part.replace(".00", "") for part in pattern.split(";"))
        return format_currency(major, code, format=no_decimals, locale=loc, currency_digits=False)
    return format_currency(major, code, locale=loc)
