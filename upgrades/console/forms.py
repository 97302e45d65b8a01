"""Console forms: every outside input validated (a bad one answers 400 with the field and the reason)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

from accounts.models import LifecycleStage, Segment
from upgrades.console.models import ObjectionCategory, ProposalKind, TaskKind
from upgrades.rules.models import SignalKind


class NoteForm(forms.Form):
    body = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class TaskForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(TaskKind.CHECK_IN, "Check-in"), (TaskKind.FOLLOW_UP, "Follow-up"), (TaskKind.RENEWAL, "Renewal")]
    )
    title = forms.CharField(max_length=200)
    due_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    notes = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class OutreachForm(forms.Form):
    contact = forms.IntegerField(min_value=1)
    note = forms.CharField(max_length=500)
    # "upgrade" (the default: the console's outreach is about the next tier) or "check_in" (not about an
    # upgrade, still allowed for an account in an experiment's control group).
    purpose = forms.ChoiceField(
        choices=[("upgrade", "About an upgrade"), ("check_in", "A check-in, not about an upgrade")], required=False
    )


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=80)
    csm = forms.CharField(max_length=20, required=False)
    segment = forms.ChoiceField(choices=[("", "Any"), *Segment.choices], required=False)
    territory = forms.CharField(max_length=64, required=False)
    tier = forms.CharField(max_length=64, required=False)
    stage = forms.ChoiceField(choices=[("", "Any"), *LifecycleStage.choices], required=False)


class ProposalForm(forms.Form):
    kind = forms.ChoiceField(choices=ProposalKind.choices, initial=ProposalKind.UPGRADE)
    title = forms.CharField(max_length=200, required=False)
    intro = forms.CharField(max_length=8000, required=False, widget=forms.Textarea(attrs={"rows": 4}))
    discount_percent = forms.DecimalField(
        min_value=0,
        max_value=100,
        decimal_places=2,
        required=False,
        help_text="Leave empty for the policy's discount. More than policy waits for approval.",
    )
    tier = forms.CharField(max_length=64)
    interval = forms.ChoiceField(choices=[("year", "Annual"), ("month", "Monthly")])
    seats = forms.IntegerField(min_value=1, max_value=1_000_000)
    term_years = forms.IntegerField(min_value=1, max_value=5, initial=1)
    addons = forms.CharField(max_length=500, required=False, help_text="Add-on keys, comma separated.")
    year_percents = forms.CharField(
        max_length=60,
        required=False,
        label="Discount by year",
        help_text="A ramp over a term of several years: one percent per year, comma separated (e.g. 10, 12, 15). "
        "Leave empty for the same discount every year.",
    )
    second_term_years = forms.IntegerField(
        min_value=1, max_value=5, required=False, help_text="Add a second option: the same plan on this term."
    )

    def clean_year_percents(self) -> tuple[Decimal, ...]:
        raw = [part.strip() for part in (self.cleaned_data.get("year_percents") or "").split(",") if part.strip()]
        try:
            values = tuple(Decimal(part.rstrip("% ")) for part in raw)
        except InvalidOperation:
            values = (Decimal("NaN"),)
        if any(not v.is_finite() for v in values):
            raise forms.ValidationError("Percentages separated by commas, e.g. 10, 12, 15.")
        if any(not Decimal(0) <= v < Decimal(100) for v in values):
            raise forms.ValidationError("Each year's discount is from 0 to below 100 percent.")
        if any(v.as_tuple().exponent < -2 for v in values):  # type: ignore[operator]
            raise forms.ValidationError("At most two decimals, e.g. 12.5.")
        return values

    def clean(self) -> dict:
        data = super().clean()
        ramp, years = data.get("year_percents") or (), data.get("term_years")
        if ramp and years is not None and len(ramp) != years:
            self.add_error("year_percents", f"Give one discount for each of the {years} years of the term.")
        return data


class ProposalEmailForm(forms.Form):
    contact = forms.IntegerField(min_value=1, error_messages={"required": "Choose who to email it to."})


class ApprovalForm(forms.Form):
    note = forms.CharField(max_length=300, required=False)


class PlaybookForm(forms.Form):
    name = forms.CharField(max_length=120)
    signal_kinds = forms.MultipleChoiceField(
        choices=SignalKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    when_to_propose = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    quantify_impact = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    active = forms.BooleanField(required=False, initial=True)


class ObjectionForm(forms.Form):
    category = forms.ChoiceField(choices=ObjectionCategory.choices)
    objection = forms.CharField(max_length=300)
    answer = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class TrialForm(forms.Form):
    target_kind = forms.ChoiceField(choices=[("tier", "Tier"), ("addon", "Add-on")])
    target_key = forms.CharField(max_length=63)


class GrantForm(forms.Form):
    tier = forms.CharField(max_length=64)
    days = forms.IntegerField(min_value=1, max_value=90)
    reason = forms.CharField(max_length=200)
