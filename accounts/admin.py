from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone

from accounts import invitations, services
from accounts.admin_base import TenantScopedAdmin, TenantScopedInline, scope_related_queryset, tenant_action
from accounts.errors import TierwiseError
from accounts.models import (
    ApiKey,
    ApiScope,
    AuditEntry,
    Capability,
    Contact,
    CustomerAccount,
    Membership,
    Role,
    Tenant,
    User,
)
from accounts.services import ACCOUNT_FIELDS


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Platform superusers only; vendors manage their staff through memberships."""

    ordering = ["email"]
    list_display = ["email", "full_name", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Status", {"fields": ["is_active", "is_staff", "is_superuser"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    list_filter = ["is_superuser", "is_active"]
    filter_horizontal: list[str] = []

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    has_view_permission = has_add_permission = has_change_permission = has_delete_permission = (
        lambda self, request, obj=None: request.user.is_superuser
    )


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "default_currency", "created_at"]
    search_fields = ["name", "slug"]
    fields = [
        "name",
        "slug",
        "time_zone",
        "locale",
        "default_currency",
        "event_late_arrival_days",
        "auto_create_accounts",
    ]

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        tenant = getattr(request, "tenant", None)
        return qs.filter(pk=tenant.pk) if tenant else qs.none()

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [] if request.user.is_superuser else ["slug"]

    def _owner(self, request: HttpRequest) -> bool:
        membership = getattr(request, "membership", None)
        return request.user.is_superuser or (membership is not None and membership.can(Capability.MANAGE_TENANT))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._owner(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._owner(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._owner(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        before = services.snapshot(Tenant.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        services.record_audit(
            obj,
            actor=request.user,
            action="tenant.updated" if change else "tenant.created",
            obj=obj,
            before=before,
            after=services.snapshot(obj),
        )


class MembershipForm(forms.ModelForm):
    email = forms.EmailField(
        help_text="The person gets an invitation to accept (new to Tierwise: they choose a password while "
        "accepting). Nothing is granted until they accept. Inviting them again sends a new link. In the outbox "
        "the invitation's link is shown only to staff who manage members and rank at least the invited role "
        "(owners); everyone else sees the email with its link hidden."
    )

    class Meta:
        model = Membership
        fields = ["role"]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "role", "status", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__full_name"]
    edit_capability = Capability.MANAGE_TENANT
    actions = ["resend_invitations", "revoke_invitations"]

    def get_queryset(self, request):
        # Invitations too: the default manager sees accepted memberships only.
        return scope_related_queryset(request, Membership, Membership.all_objects.select_related("user"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["email", "role"] if obj is None else ["user", "role", "status", "invited_by", "invited_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "status", "invited_by", "invited_at"] if obj is not None else []

    @admin.display(description="Status")
    def status(self, obj: Membership) -> str:
        if obj.is_accepted:
            return "Accepted"
        if obj.invitation_expires_at and obj.invitation_expires_at <= timezone.now():
            return "Invited, link expired (resend)"
        if obj.invitation_sent_at:
            return "Invited, email sent"
        if obj.invitation_send_started_at:
            return "Invited, delivery uncertain (a worker stopped while sending; resend if it did not arrive)"
        return "Invited, email queued"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        tenant = self._tenant_for_write(request)
        try:
            membership = invitations.add_member(
                tenant, email=form.cleaned_data["email"], role=form.cleaned_data["role"], actor=request.user
            )
        except TierwiseError as exc:
            raise PermissionDenied(exc.message) from exc
        obj.pk, obj.tenant, obj.user = membership.pk, membership.tenant, membership.user

    @tenant_action(capability=Capability.MANAGE_TENANT, description="Resend selected invitations (new link)")
    def resend_invitations(self, request, queryset):
        done = 0
        for membership in queryset.filter(accepted_at__isnull=True):
            try:
                invitations.resend_invitation(request.tenant, membership=membership, actor=request.user)
                done += 1
            except TierwiseError as exc:
                self.message_user_error(request, f"{membership.user}: {exc.message}")
        self.message_user(request, f"Sent {done} invitation(s) again; earlier links no longer work.")

    @tenant_action(capability=Capability.MANAGE_TENANT, description="Revoke selected invitations")
    def revoke_invitations(self, request, queryset):
        done = 0
        for membership in queryset.filter(accepted_at__isnull=True):
            try:
                invitations.revoke_invitation(request.tenant, membership=membership, actor=request.user)
                done += 1
            except TierwiseError as exc:
                self.message_user_error(request, f"{membership.user}: {exc.message}")
        self.message_user(request, f"Revoked {done} invitation(s).")


class ApiKeyCreateForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple, label="Scopes"
    )

    class Meta:
        model = ApiKey
        fields = ["name"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]
    edit_capability = Capability.MANAGE_TENANT
    audit_admin_edits = False  # services audit key creation and revocation

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "scope_choices"] if obj is None else ["name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        tenant = self._tenant_for_write(request)
        key, secret = services.create_api_key(
            tenant, name=form.cleaned_data["name"], scopes=form.cleaned_data["scope_choices"], actor=request.user
        )
        obj.pk, obj.tenant, obj.prefix, obj.scopes = key.pk, key.tenant, key.prefix, key.scopes
        messages.warning(request, f"Copy this key now; it will not be shown again: {secret}")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the audit trail keeps the key's history

    @tenant_action(capability=Capability.MANAGE_TENANT, description="Revoke selected API keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.revoke_api_key(key.tenant, api_key=key, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class ContactInline(TenantScopedInline):
    model = Contact
    fields = ["email", "name", "role", "locale", "marketing_consent"]
    edit_capability = Capability.EDIT_ACCOUNTS


@admin.register(CustomerAccount)
class CustomerAccountAdmin(TenantScopedAdmin):
    list_display = ["name", "external_id", "industry", "size_band", "segment", "lifecycle_stage", "assigned_csm"]
    list_filter = ["lifecycle_stage", "segment", "size_band", "industry", "assigned_csm"]
    search_fields = ["name", "external_id"]
    inlines = [ContactInline]
    edit_capability = Capability.EDIT_ACCOUNTS
    fields = ["external_id", *ACCOUNT_FIELDS]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assigned_csm":  # the picker offers this tenant's members with the CSM role only
            people = scope_related_queryset(request, User, User.objects.all())
            kwargs["queryset"] = people.filter(
                memberships__tenant=getattr(request, "tenant", None), memberships__role=Role.CSM
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        try:
            super().save_model(request, obj, form, change)
        except TierwiseError as exc:  # pragma: no cover - form validation catches first
            self.message_user_error(request, exc.message)


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantScopedAdmin):
    list_display = ["created_at", "actor_label", "action", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "action", "object_repr", "object_id"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
