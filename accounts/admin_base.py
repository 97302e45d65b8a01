"""Tenant-scoped Django admin: staff of tenant A see, search, pick and edit only A's rows.

Hazard: any admin for a tenant-owned model must subclass TenantScopedAdmin (or the
inline below); the plain ModelAdmin lists every tenant's rows and FK dropdowns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest

from accounts.models import Capability, Membership, User
from accounts.services import record_audit, snapshot


def _is_tenant_owned(model: type[models.Model]) -> bool:
    return any(f.name == "tenant" for f in model._meta.fields)


def scope_related_queryset(request: HttpRequest, model: type[models.Model], qs: models.QuerySet) -> models.QuerySet:
    """The rows of a related model a staff member may pick: their tenant's only."""
    tenant = getattr(request, "tenant", None)
    if request.user.is_superuser and tenant is None:
        return qs
    if tenant is None:
        return qs.none()
    if _is_tenant_owned(model):
        return qs.filter(tenant=tenant)
    if issubclass(model, User):
        return qs.filter(memberships__tenant=tenant, memberships__accepted_at__isnull=False).distinct()
    return qs


ACTION_CAPABILITY_ATTR = "required_capability"


def tenant_action(*, capability: str, description: str | None = None, **kwargs: Any) -> Callable:
    """`@admin.action` plus the capability the action's service needs.

    TenantScopedAdmin.get_actions offers an action only to members holding that capability, and the
    action re-checks it when it runs, so posting the action's name by hand is refused too. An action
    without a declared capability is offered to nobody but platform superusers.
    """

    def decorator(func: Callable) -> Callable:
        func = admin.action(description=description, **kwargs)(func)
        setattr(func, ACTION_CAPABILITY_ATTR, str(capability))
        return func

    return decorator


def action_capability(func: Any) -> str | None:
    return getattr(func, ACTION_CAPABILITY_ATTR, None)


class TenantRelatedListFilter(admin.RelatedFieldListFilter):
    def field_choices(self, field, request, model_admin):
        qs = scope_related_queryset(request, field.related_model, field.related_model._default_manager.all())
        return [(obj.pk, str(obj)) for obj in qs[:500]]


class TenantPermissionMixin:
    view_capability: str = Capability.VIEW
    edit_capability: str = Capability.MANAGE_TENANT

    def _can(self, request: HttpRequest, capability: str) -> bool:
        if request.user.is_superuser:
            return True
        membership: Membership | None = getattr(request, "membership", None)
        return membership is not None and membership.can(capability)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._can(request, self.view_capability)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, self.view_capability) or self._can(request, self.edit_capability)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return getattr(request, "tenant", None) is not None and self._can(request, self.edit_capability)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, self.edit_capability)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, self.edit_capability)


class TenantScopedInline(TenantPermissionMixin, admin.TabularInline):
    extra = 0

    def get_queryset(self, request: HttpRequest):
        return scope_related_queryset(request, self.model, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault(
            "queryset",
            scope_related_queryset(request, db_field.related_model, db_field.related_model._default_manager.all()),
        )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantScopedAdmin(TenantPermissionMixin, admin.ModelAdmin):
    """Lists, searches and FK dropdowns limited to request.tenant; saves set the tenant; edits are audited."""

    audit_admin_edits = True

    def _guard_action(self, func: Callable, capability: str | None) -> Callable:
        @functools.wraps(func)
        def guarded(modeladmin: Any, request: HttpRequest, queryset: Any) -> Any:
            allowed = request.user.is_superuser if capability is None else self._can(request, capability)
            if not allowed:
                raise PermissionDenied("You may not run this action.")
            return func(modeladmin, request, queryset)

        return guarded

    def get_actions(self, request: HttpRequest):
        """Only the actions this member's capabilities allow; each re-checks when it runs.

        Django's own actions (delete_selected) are guarded by their `allowed_permissions` instead.
        """
        actions = super().get_actions(request)
        allowed = {}
        for name, (func, action_name, description) in actions.items():
            capability = action_capability(func)
            if capability is None and getattr(func, "allowed_permissions", None):
                allowed[name] = (func, action_name, description)  # Django filtered it by has_*_permission
                continue
            if request.user.is_superuser if capability is None else self._can(request, capability):
                allowed[name] = (self._guard_action(func, capability), action_name, description)
        return allowed

    def get_queryset(self, request: HttpRequest):
        return scope_related_queryset(request, self.model, super().get_queryset(request))

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not _is_tenant_owned(self.model):
            return form
        tenant = getattr(request, "tenant", None)

        class TenantForm(form):
            """Unique constraints that include the tenant are checked here, not left to the database."""

            def _post_clean(self) -> None:
                if self.instance.tenant_id is None and tenant is not None:
                    self.instance.tenant = tenant
                super()._post_clean()

            def _get_validation_exclusions(self):
                exclusions = super()._get_validation_exclusions()
                if self.instance.tenant_id is not None:
                    exclusions.discard("tenant")
                return exclusions

        TenantForm.__name__ = form.__name__
        return TenantForm

    def get_list_filter(self, request: HttpRequest):
        scoped = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                field = self.model._meta.get_field(entry)
                if field.is_relation:
                    entry = (entry, TenantRelatedListFilter)
            scoped.append(entry)
        return scoped

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault(
            "queryset",
            scope_related_queryset(request, db_field.related_model, db_field.related_model._default_manager.all()),
        )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault(
            "queryset",
            scope_related_queryset(request, db_field.related_model, db_field.related_model._default_manager.all()),
        )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _tenant_for_write(self, request: HttpRequest):
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            raise PermissionDenied("Choose a tenant before creating anything.")
        return tenant

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        if _is_tenant_owned(type(obj)) and obj.tenant_id is None:
            obj.tenant = self._tenant_for_write(request)
        before = None
        if change and self.audit_admin_edits:
            old = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = snapshot(old) if old is not None else None
        super().save_model(request, obj, form, change)
        if self.audit_admin_edits:
            after = snapshot(obj)
            if before is not None:
                changed = {k for k in after if before.get(k) != after.get(k)}
                before = {k: before[k] for k in changed}
                after = {k: after[k] for k in changed}
            if before or after:
                record_audit(
                    getattr(obj, "tenant", None),
                    actor=request.user,
                    action=f"{obj._meta.model_name}.{'updated' if change else 'created'}",
                    obj=obj,
                    before=before,
                    after=after,
                )

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        before = snapshot(obj)
        tenant = getattr(obj, "tenant", None)
        record_audit(tenant, actor=request.user, action=f"{obj._meta.model_name}.deleted", obj=obj, before=before)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            record_audit(
                getattr(obj, "tenant", None),
                actor=request.user,
                action=f"{obj._meta.model_name}.deleted",
                obj=obj,
                before=snapshot(obj),
            )
            obj.delete()
        for obj in instances:
            if _is_tenant_owned(type(obj)) and obj.tenant_id is None:
                obj.tenant = (
                    form.instance.tenant if _is_tenant_owned(type(form.instance)) else self._tenant_for_write(request)
                )
            is_new = obj.pk is None
            obj.save()
            record_audit(
                obj.tenant if _is_tenant_owned(type(obj)) else None,
                actor=request.user,
                action=f"{obj._meta.model_name}.{'created' if is_new else 'updated'}",
                obj=obj,
                after=snapshot(obj),
            )
        formset.save_m2m()

    def message_user_error(self, request: HttpRequest, message: str) -> None:
        self.message_user(request, message, level=messages.ERROR)
