import pytest

from accounts.models import AuditEntry
from accounts.services import record_audit
from accounts.tenancy import AppendOnly
from billing.models import LicenseChange
from usage.models import Event

pytestmark = pytest.mark.django_db


def test_an_audit_entry_cannot_be_changed_or_deleted(world_a):
    entry = record_audit(world_a.tenant, actor="test", action="thing.done")
    entry.action = "thing.undone"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "thing.done"


def test_a_licence_change_cannot_be_rewritten(world_a):
    change = LicenseChange.objects.create(
        tenant=world_a.tenant,
        account=world_a.account,
        kind="upgrade",
        actor_label="test",
        mrr_before=100,
        mrr_after=200,
    )
    change.mrr_after = 999
    with pytest.raises(ValueError, match="append-only"):
        change.save()
    assert LicenseChange.objects.get(pk=change.pk).mrr_after == 200


def test_every_history_table_is_append_only():
    assert all(issubclass(model, AppendOnly) for model in (AuditEntry, LicenseChange, Event))
