"""The one money formatter and parser: integer minor units + an ISO 4217 code <-> text people read.

Written in the tenant's locale (`Tenant.locale`, default 'en') wherever a tenant is known: passed
in, or the tenant the request, task or command works in (accounts.tenancy).

Formatting is Babel's (CLDR data): symbol, grouping and decimals follow the currency and the
locale, so '$1,234.50', '1.234,50 €' and '¥1,235' all come from one place. The exponent (how
many minor units make one unit: 2 for USD, 0 for JPY, 3 for BHD) is ISO 4217's, also from Babel.
Amounts never pass through a float: Decimal is scaled by a power of ten.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, parse_decimal
from django.db.models.signals import post_save
from django.utils import translation

from accounts.tenancy import current_tenant_id

if TYPE_CHECKING:
    from accounts.models import Tenant

DEFAULT_LOCALE = "en"
# tenant id -> (its locale, when read): the tenant context (request, task, command) names the tenant, not
# its row, so the locale is read once and kept briefly. This process forgets it when the tenant is saved;
# other processes follow within TENANT_LOCALE_TTL seconds.
TENANT_LOCALE_TTL = 30.0
_tenant_locales: dict[int, tuple[str, float]] = {}


def _valid(name: str | None) -> str | None:
    if not name:
        return None
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return name


def tenant_locale(tenant: Tenant | int | None) -> str | None:
    """The tenant's money locale (`Tenant.locale`), or None when there is no tenant (or it names none)."""
    if tenant is None:
        return None
    if not isinstance(tenant, int):
        return _valid(tenant.locale)
    found = _tenant_locales.get(tenant)
    now = time.monotonic()
    if found is None or now - found[1] > TENANT_LOCALE_TTL:
        from accounts.models import Tenant

        locale = Tenant.objects.filter(pk=tenant).values_list("locale", flat=True).first() or ""
        found = (locale, now)
        _tenant_locales[tenant] = found
    return _valid(found[0])


def _forget_tenant_locale(sender: Any, instance: Any, **kwargs: Any) -> None:
    _tenant_locales.pop(instance.pk, None)


post_save.connect(_forget_tenant_locale, sender="accounts.Tenant", dispatch_uid="catalog.money.tenant_locale")


def current_locale(tenant: Tenant | int | None = None) -> str:
    """The locale money is written in: the tenant's (given, else the one the current request, task or
    command works in), else the active Django language ('en-us' -> 'en_US'), else 'en'."""
    chosen = tenant_locale(tenant if tenant is not None else current_tenant_id())
    if chosen is not None:
        return chosen
    language = translation.get_language() or DEFAULT_LOCALE
    return _valid(translation.to_locale(language)) or DEFAULT_LOCALE


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


def parse_amount(text: str, currency: str, *, locale: str | None = None, tenant: Tenant | int | None = None) -> int:
    """What a person typed ('29', '29.00', '1,234.50') -> minor units; ValueError with a readable reason."""
    cleaned = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    for sign in ("$", "€", "£", "¥", (currency or "").upper()):
        if sign:
            cleaned = cleaned.replace(sign, "")
    if not cleaned:
        raise ValueError("Enter an amount.")
    try:
        number = parse_decimal(cleaned, locale=locale or current_locale(tenant), strict=True)
    except Exception:  # Babel raises NumberFormatError (a ValueError) or InvalidOperation
        try:
            number = Decimal(cleaned)
        except InvalidOperation as exc:
            raise ValueError(f"“{text}” is not an amount: write it like 29.00.") from exc
    return to_minor(number, currency)


def format_money(
    amount: int | None,
    currency: str,
    *,
    locale: str | None = None,
    whole: bool = False,
    tenant: Tenant | int | None = None,
) -> str:
    """12345, 'USD' -> '$123.45' in the locale: `locale`, else the tenant's (`tenant`, else the current
    tenant context's: `Tenant.locale`, so de_DE writes '123,45 $'), else the active language, else 'en';
    '' for None.

    `whole` drops the decimals of a round amount ('$29' in a headline price), never of '$29.50'.
    """
    if amount is None:
        return ""
    code = (currency or "USD").upper()
    major = to_major(int(amount), code)
    loc = locale or current_locale(tenant)
    if whole and major == major.to_integral_value():
        pattern = Locale.parse(loc).currency_formats["standard"].pattern
        no_decimals = ";".join(part.replace(".00", "") for part in pattern.split(";"))
        return format_currency(major, code, format=no_decimals, locale=loc, currency_digits=False)
    return format_currency(major, code, locale=loc)
