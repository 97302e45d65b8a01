"""Playbooks and their objection library (PMs manage them; CSMs insert the answers)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.errors import InvalidInput
from accounts.models import Tenant, User
from accounts.services import record_audit
from upgrades.console.models import Objection, Playbook


def save_playbook(tenant: Tenant, *, actor: User, data: dict[str, Any], playbook: Playbook | None = None) -> Playbook:
    playbook = playbook or Playbook(tenant=tenant, created_by=actor)
    for name in ("name", "signal_kinds", "when_to_propose", "quantify_impact", "active"):
        if name in data:
            setattr(playbook, name, data[name])
    try:
        with transaction.atomic():
            playbook.save()
    except IntegrityError:
        raise InvalidInput("Name taken.", details={"name": ["Another playbook has this name."]}) from None
    record_audit(tenant, actor=actor, action="console.playbook.save", obj=playbook, after={"name": playbook.name})
    return playbook


def add_objection(tenant: Tenant, *, actor: User, playbook: Playbook, data: dict[str, Any]) -> Objection:
    position = Objection.objects.for_tenant(tenant).filter(playbook=playbook).count()
    row = Objection.objects.create(tenant=tenant, playbook=playbook, position=position, **data)
    record_audit(tenant, actor=actor, action="console.objection.add", obj=row)
    return row
