"""Reads for a template's version history: every version of one template, newest first, each with its
people and what changed against the version before it.

"The same template" is one tenant's key and variant: versions are numbered per (tenant, key, variant)
(the `messagetemplate_version` constraint) and one of them is live at a time. The channel is a
content field like the subject, so a version that changed it shows the change rather than starting
a history of its own. People come from the version's own fields (drafted, submitted, approved); the
audit log adds what the fields do not keep (who retired it, who sent it back to draft, and why).

The diff is plain text, line by line (difflib): the template's HTML is shown as text and escaped
where it is rendered, never rendered as markup.
"""

from __future__ import annotations

import datetime
import difflib
from collections import defaultdict
from dataclasses import dataclass, field

from accounts.models import Tenant, User
from accounts.selectors import list_audit_entries
from messaging.models import MessageTemplate
from messaging.models.templates import CONTENT_FIELDS

# What a product manager calls each part (the diff follows CONTENT_FIELDS' order).
FIELD_LABELS = {
    "name": "Name",
    "purpose": "Purpose",
    "channel": "Channel",
    "subject": "Subject",
    "html_body": "HTML body",
    "text_body": "Plain-text body",
    "title": "Title",
    "body": "Body",
    "cta_label": "Call to action",
    "cta_url": "Call-to-action URL",
    "placement": "Placement",
}
CONTEXT_LINES = 2
ACTION_LABELS = {
    "messagetemplate.created": "Drafted",
    "messagetemplate.updated": "Edited",
    "messagetemplate.submitted": "Submitted for approval",
    "messagetemplate.approved": "Approved (live)",
    "messagetemplate.returned_to_draft": "Returned to draft",
    "messagetemplate.retired": "Retired",
}


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "added", "removed", "context" or "gap" (lines left out between two hunks)
    text: str


@dataclass(frozen=True)
class FieldChange:
    name: str
    label: str
    lines: list[DiffLine]


@dataclass(frozen=True)
class TrailEntry:
    label: str
    actor: str
    at: datetime.datetime  # shown in the tenant's zone by the template's date filter
    reason: str = ""


@dataclass
class VersionEntry:
    template: MessageTemplate
    previous: MessageTemplate | None
    changes: list[FieldChange] = field(default_factory=list)
    contributors: list[User] = field(default_factory=list)  # who edited the draft besides its author
    trail: list[TrailEntry] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _text(template: MessageTemplate, name: str) -> str:
    display = getattr(template, f"get_{name}_display", None)
    value = display() if callable(display) else getattr(template, name)
    return str(value or "")


def diff_lines(before: str, after: str) -> list[DiffLine]:
    """A line-by-line diff of two texts with a little context; gaps between hunks are one "gap" line."""
    lines: list[DiffLine] = []
    old, new = before.splitlines() or [""], after.splitlines() or [""]
    for raw in difflib.unified_diff(old, new, lineterm="", n=CONTEXT_LINES):
        if raw.startswith(("---", "+++")):
            continue
        if raw.startswith("@@"):
            if lines:
                lines.append(DiffLine("gap", "⋯"))
            continue
        kind = {"+": "added", "-": "removed"}.get(raw[:1], "context")
        lines.append(DiffLine(kind, raw[1:]))
    return lines


def changes_between(previous: MessageTemplate | None, template: MessageTemplate) -> list[FieldChange]:
    """The content fields that differ, each with its line diff. A first version differs from nothing."""
    if previous is None:
        return []
    changes = []
    for name in CONTENT_FIELDS:
        label = FIELD_LABELS.get(name) or str(MessageTemplate._meta.get_field(name).verbose_name).capitalize()
        before, after = _text(previous, name), _text(template, name)
        if before != after:
            changes.append(FieldChange(name, label, diff_lines(before, after)))
    return changes


def _trails(tenant: Tenant, versions: list[MessageTemplate]) -> dict[int, list[TrailEntry]]:
    entries = list_audit_entries(tenant, object_type=MessageTemplate._meta.label).filter(
        object_id__in=[str(v.pk) for v in versions], action__in=list(ACTION_LABELS)
    )
    trails: dict[int, list[TrailEntry]] = defaultdict(list)
    for entry in entries.order_by("created_at", "id"):
        reason = str((entry.after or {}).get("reason") or "") if isinstance(entry.after, dict) else ""
        trails[int(entry.object_id)].append(
            TrailEntry(ACTION_LABELS[entry.action], entry.actor_label, entry.created_at, reason)
        )
    return trails


def list_template_versions(tenant: Tenant, *, template: MessageTemplate) -> list[VersionEntry]:
    """Every version of `template`'s key and variant in `tenant`, newest first. Three queries."""
    versions = list(
        MessageTemplate.objects.for_tenant(tenant)
        .filter(key=template.key, variant=template.variant)
        .select_related("created_by", "submitted_by", "approved_by")
        .order_by("-version")
    )
    contributor_ids = {pk for v in versions for pk in v.contributor_ids or [] if pk != v.created_by_id}
    users = {u.pk: u for u in User.objects.filter(pk__in=contributor_ids)} if contributor_ids else {}
    trails = _trails(tenant, versions)
    history = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        history.append(
            VersionEntry(
                template=version,
                previous=previous,
                changes=changes_between(previous, version),
                contributors=[
                    users[pk] for pk in version.contributor_ids or [] if pk != version.created_by_id and pk in users
                ],
                trail=trails.get(version.pk, []),
            )
        )
    return history
