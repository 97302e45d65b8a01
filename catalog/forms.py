"""Admin form fields that let product managers write outcomes, scenarios and discount rules as text.

JSON in a textarea is how a developer would enter these; a product manager writes one
outcome per line, a scenario as a title line and a story, and "2 years: 10". Each field
parses to exactly what the model stores and names the line it could not read.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from catalog import money, pricing
from catalog.validation import PriceDraft, price_issues


class LinesField(forms.CharField):
    """A list of short strings, one per line (blank lines dropped)."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 70})

    def __init__(self, *args: Any, max_items: int = 12, **kwargs: Any) -> None:
        self.max_items = max_items
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value or ""

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        lines = [line.strip(" -•\t") for line in (value or "").splitlines()]
        lines = [line for line in lines if line]
        if len(lines) > self.max_items:
            raise ValidationError(f"Keep it to {self.max_items} lines or fewer; customers read the first few.")
        for i, line in enumerate(lines, 1):
            if len(line) > 200:
                raise ValidationError(f"Line {i} is longer than 200 characters.")
        return lines

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(initial or []) != self.to_python(data)


class ScenariosField(forms.CharField):
    """Scenarios as blocks separated by a blank line: the first line is the title, the rest the story."""

    widget = forms.Textarea(attrs={"rows": 8, "cols": 70})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "One scenario per block, blocks separated by a blank line. First line: a "
            "title (a team like the customer's). Following lines: what changes for them.",
        )
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list):
            return "\n\n".join(
                f"{s.get('title', '')}\n{s.get('story', '')}".strip() for s in value if isinstance(s, dict)
            )
        return value or ""

    def to_python(self, value: Any) -> list[dict[str, str]]:
        if isinstance(value, list):
            return value
        blocks = [b.strip() for b in re.split(r"\n\s*\n", (value or "").replace("\r\n", "\n")) if b.strip()]
        scenarios = []
        for i, block in enumerate(blocks, 1):
            title, _, story = block.partition("\n")
            story = " ".join(line.strip() for line in story.splitlines() if line.strip())
            if not story:
                raise ValidationError(f"Scenario {i} ({title[:40]!r}) has a title but no story on the next line.")
            scenarios.append({"title": title.strip(), "story": story})
        return scenarios

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(initial or []) != self.to_python(data)


TERM_LINE = re.compile(r"^\s*(\d+)\s*(?:y|yr|yrs|year|years)?\s*[:=]\s*([\d.]+)\s*%?\s*$", re.I)
VOLUME_LINE = re.compile(r"^\s*(\d+)\s*(?:(?:-|–|to)\s*(\d+)|(\+))?\s*(?:seats?)?\s*[:=]\s*([\d.]+)\s*%?\s*$", re.I)


def _percent(text: str, line_no: int) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"Line {line_no}: {text!r} is not a percentage.")
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


class RuleLinesField(forms.CharField):
    """Discount rules edited as one plain line per rule instead of JSON; subclasses say the line format."""

    line: re.Pattern[str]
    example: str
    help: str
    placeholder: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", self.help)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "cols": 40, "placeholder": self.placeholder}))
        super().__init__(*args, **kwargs)

    def format_rule(self, rule: dict[str, Any]) -> str:
        raise NotImplementedError

    def parse_rule(self, match: re.Match[str], line_no: int) -> dict[str, Any]:
        raise NotImplementedError

    def check_rules(self, rules: list[dict[str, Any]]) -> None:
        """Raises ValueError with a human message when the rules contradict each other."""
        raise NotImplementedError

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list):
            return "\n".join(self.format_rule(r) for r in value)
        return value or ""

    def to_python(self, value: Any) -> list[dict[str, Any]]:
        if isinstance(value, list):
            return value
        rules = []
        for i, line in enumerate((value or "").splitlines(), 1):
            if not line.strip():
                continue
            match = self.line.match(line)
            if not match:
                raise ValidationError(f"Line {i}: write it as {self.example}.")
            rules.append(self.parse_rule(match, i))
        try:
            self.check_rules(rules)
        except ValueError as exc:
            raise ValidationError(str(exc))
        return rules

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(initial or []) != self.to_python(data)


class TermRulesField(RuleLinesField):
    """'2 years: 10' per line -> [{"years": 2, "percent": "10"}]."""

    line = TERM_LINE
    example = "'2 years: 10'"
    placeholder = "1 year: 0\n2 years: 10\n3 years: 15"
    help = (
        "One line per commitment length, e.g. '2 years: 10' (percent off). "
        "Longer terms get the rule of the longest term not above them."
    )

    def format_rule(self, rule: dict[str, Any]) -> str:
        return f"{rule['years']} year{'s' if int(rule['years']) != 1 else ''}: {rule['percent']}"

    def parse_rule(self, match: re.Match[str], line_no: int) -> dict[str, Any]:
        return {"years": int(match.group(1)), "percent": _percent(match.group(2), line_no)}

    def check_rules(self, rules: list[dict[str, Any]]) -> None:
        pricing.parse_term_rules(rules)


class VolumeRulesField(RuleLinesField):
    """'50-199: 5' or '200+: 10' per line -> [{"min_seats": 50, "max_seats": 199, "percent": "5"}]."""

    line = VOLUME_LINE
    example = "'50-199: 5' or '200+: 10'"
    placeholder = "1-49: 0\n50-199: 5\n200+: 10"
    help = "One line per seat bracket, e.g. '50-199: 5' or '200+: 10'. Brackets may not overlap."

    def format_rule(self, rule: dict[str, Any]) -> str:
        upper = "+" if rule.get("max_seats") in (None, "") else f"-{rule['max_seats']}"
        return f"{rule['min_seats']}{upper}: {rule['percent']}"

    def parse_rule(self, match: re.Match[str], line_no: int) -> dict[str, Any]:
        low, high, _plus, pct = match.groups()
        return {"min_seats": int(low), "max_seats": int(high) if high else None, "percent": _percent(pct, line_no)}

    def check_rules(self, rules: list[dict[str, Any]]) -> None:
        pricing.parse_volume_rules(rules)


MAX_AMOUNT = 10**12  # minor units: far above any list price, far below BigIntegerField's range


class MoneyAmountField(forms.Field):
    """An amount typed in the currency's units ("29.00", "1,250") and cleaned to integer minor units (2900).

    The currency's exponent comes from ISO 4217 through Babel (USD 2, JPY 0, BHD 3), so nobody
    types cents. The stored integer is shown back in units ("29.00"); no float is involved.
    """

    widget = forms.TextInput

    def __init__(self, *args: Any, currency: str = "USD", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency

    @property
    def currency(self) -> str:
        return self._currency

    @currency.setter
    def currency(self, value: str) -> None:
        self._currency = (value or "USD").upper()
        places = money.exponent(self._currency)
        example = money.to_major(2900 * 10**places // 100, self._currency)
        self.label = f"Amount ({self._currency})"
        self.widget.attrs.update({"inputmode": "decimal", "placeholder": str(example), "size": 12})
        self.help_text = f"In {self._currency}, e.g. {example}."

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(money.to_major(value, self.currency))
        return value

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()[:64] if value is not None else ""
        if text in self.empty_values:
            return None
        try:
            amount = money.parse_amount(text, self.currency)
        except ValueError as exc:
            places = money.exponent(self.currency)
            raise ValidationError(
                f"{exc}. Enter the amount in {self.currency} units"
                + (
                    f" with at most {places} decimals, like {money.to_major(2900 * 10**places // 100, self.currency)}."
                    if places
                    else ", like 29."
                )
            ) from exc
        if amount < 0:
            raise ValidationError("A price cannot be negative.")
        if amount > MAX_AMOUNT:
            raise ValidationError(f"That is more than {money.format_money(MAX_AMOUNT, self.currency)}.")
        return amount

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != (None if initial in (None, "") else int(initial))
        except (ValidationError, ValueError, TypeError):
            return True


class PriceForm(forms.ModelForm):
    amount = MoneyAmountField()

    class Meta:
        fields = ["interval", "amount", "per_seat"]


class PriceInlineFormSet(forms.BaseInlineFormSet):
    """Checks the prices of a tier/add-on as a set: currency, one per interval, annual <= 12 x monthly.

    Each row's amount is typed in the tier's/add-on's currency units and stored in minor units.
    """

    def _construct_form(self, i: int, **kwargs: Any) -> Any:
        form = super()._construct_form(i, **kwargs)
        if "amount" in form.fields:
            form.fields["amount"].currency = self.instance.currency
        return form

    @property
    def empty_form(self) -> Any:
        form = super().empty_form
        if "amount" in form.fields:
            form.fields["amount"].currency = self.instance.currency
        return form

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        drafts = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("interval"):
                continue
            drafts.append(
                PriceDraft(
                    data["interval"],
                    int(data.get("amount") or 0),
                    data.get("currency") or self.instance.currency,
                    bool(data.get("per_seat")),
                )
            )
        issues = price_issues(self.instance, drafts)
        if issues:
            raise ValidationError([m for messages in issues.values() for m in messages])


class EntitlementInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("feature"):
                continue
            feature = data["feature"]
            if feature.pk in seen:
                raise ValidationError(f"{feature.name} is listed twice; keep one row per feature.")
            seen.add(feature.pk)
            if self.instance.product_id and feature.product_id != self.instance.product_id:
                raise ValidationError(f"{feature.name} belongs to another product.")
