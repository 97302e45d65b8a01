"""Message templates in the admin: written as drafts, validated on save (the form shows the error on its
field), previewed with a real contact of the tenant, moved through governance by actions that call
the services (four eyes, audited), and read back as a version history (the "History" button,
messaging/admin/history.py). Analysts read; editing needs 'edit rules, templates and experiments'."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.admin_base import TenantScopedAdmin, tenant_action
from accounts.models import Capability, Contact
from messaging import rendering
from messaging.admin.history import TEMPLATE as HISTORY_TEMPLATE
from messaging.admin.history import version_history_view
from messaging.errors import TierwiseError
from messaging.models import MessageTemplate, TemplateState
from messaging.services import templates as services
from messaging.services.sending import render_for
from messaging.services.templates import sample_full_context


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = list(services.EDITABLE)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        candidate = MessageTemplate(tenant=self.instance.tenant if self.instance.tenant_id else self._tenant)
        for name in services.EDITABLE:
            setattr(candidate, name, data.get(name, getattr(self.instance, name)))
        try:
            services.validate_template(candidate)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantScopedAdmin):
    form = MessageTemplateForm
    edit_capability = Capability.EDIT_RULES
    list_display = ["name", "key", "variant", "version", "purpose", "channel", "state"]
    list_filter = ["state", "channel", "purpose"]
    search_fields = ["name", "key"]
    readonly_fields = ["state", "version", "variables", "preview_link", "submitted_by", "approved_by", "live_at"]
    actions = ["submit_selected", "approve_selected", "return_selected", "retire_selected", "new_version_selected"]
    audit_admin_edits = False  # the services audit every write
    object_history_template = HISTORY_TEMPLATE  # "History": every version, not Django's LogEntry list

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        form._tenant = getattr(request, "tenant", None)
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("key")
            fields.append("variant")
            if obj.state != TemplateState.DRAFT:
                fields += [f for f in services.CONTENT if f not in fields]
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are the record; retire instead

    @admin.display(description="Variables this template may use")
    def variables(self, obj: MessageTemplate) -> str:
        allowed = rendering.allowed_variables(obj.purpose) if obj.purpose else rendering.COMMON_VARIABLES
        return format_html("<ul>{}</ul>", format_html_join("", "<li><code>{}</code>: {}</li>", allowed.items()))

    @admin.display(description="Preview")
    def preview_link(self, obj: MessageTemplate) -> str:
        if not obj.pk:
            return "Save the draft to preview it."
        url = reverse("admin:messaging_messagetemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview with one of your contacts</a>', url)

    def save_model(self, request: HttpRequest, obj: MessageTemplate, form: Any, change: bool) -> None:
        tenant = self._tenant_for_write(request)
        fields = {name: form.cleaned_data[name] for name in services.EDITABLE if name in form.cleaned_data}
        try:
            if change:
                fields = {k: v for k, v in fields.items() if k in services.CONTENT}
                saved = services.update_template(tenant, template=obj, actor=request.user, **fields)
            else:
                saved = services.create_template(tenant, actor=request.user, **fields)
        except TierwiseError as exc:
            raise ValidationError(exc.message) from exc
        obj.pk, obj.tenant = saved.pk, saved.tenant
        obj.refresh_from_db()

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.preview_view)
        return [path("<str:object_id>/preview/", view, name="messaging_messagetemplate_preview"), *super().get_urls()]

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        return version_history_view(self, request, object_id)

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        if template is None or not self.has_view_permission(request, template):
            return HttpResponse("Not found.", status=404)
        contacts = Contact.objects.for_tenant(request.tenant).select_related("account").order_by("email")[:200]
        chosen = request.GET.get("contact", "")
        contact = next((c for c in contacts if str(c.pk) == chosen), None) or (contacts[0] if contacts else None)
        context = sample_full_context(template, contact=contact)
        sample = rendering.sample_context(template.purpose)
        error, rendered = "", {}
        try:
            if contact is not None:
                rendered = render_for(template, contact=contact, context=sample, brand=context["brand"])
        except Exception as exc:  # the author's template: show why, don't 500
            error = str(exc)
        page = {**self.admin_site.each_context(request), "opts": self.opts, "original": template, "title": "Preview",
                "template_obj": template, "contacts": contacts, "contact": contact, "rendered": rendered,
                "error": error}  # fmt: skip
        return render(request, "messaging/admin/preview.html", page)

    def _run(self, request: HttpRequest, queryset: Any, verb: str) -> None:
        done = 0
        for template in queryset:
            try:
                if verb == "new_version":
                    services.new_version(request.tenant, template=template, actor=request.user)
                else:
                    services.TRANSITIONS[verb](request.tenant, template=template, actor=request.user)
                done += 1
            except TierwiseError as exc:
                self.message_user(request, f"{template.name}: {exc.message}", level=messages.ERROR)
        if done:
            self.message_user(request, f"{done} template(s): {verb.replace('_', ' ')} done.")

    @tenant_action(capability=Capability.EDIT_RULES, description="Submit selected for approval")
    def submit_selected(self, request, queryset):
        self._run(request, queryset, "submit")

    @tenant_action(capability=Capability.EDIT_RULES, description="Approve selected (four eyes: not your own)")
    def approve_selected(self, request, queryset):
        self._run(request, queryset, "approve")

    @tenant_action(capability=Capability.EDIT_RULES, description="Return selected to draft")
    def return_selected(self, request, queryset):
        self._run(request, queryset, "return_to_draft")

    @tenant_action(capability=Capability.EDIT_RULES, description="Retire selected")
    def retire_selected(self, request, queryset):
        self._run(request, queryset, "retire")

    @tenant_action(capability=Capability.EDIT_RULES, description="New draft version of selected")
    def new_version_selected(self, request, queryset):
        self._run(request, queryset, "new_version")
