"""Customer documents a sibling sub-domain shares to the customer's portal (a CSM's proposal, issue 17).

The portal and the console may not import each other (import-linter: "upgrades sub-domains"), so the console
registers a provider here (upgrades.apps ready()) and the portal reads and acts through it. Rows are plain
dataclasses: the portal never sees the provider's models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from accounts.models import Contact, CustomerAccount, Tenant


@dataclass(frozen=True)
class PathRow:
    """One invoice of an option's price path: when and how much (minor units)."""

    date: datetime
    kind: str  # "today" | "renewal"
    list_amount: int
    discount_amount: int
    amount: int


@dataclass(frozen=True)
class DocumentOption:
    key: str
    label: str
    seats: int
    interval: str
    term_years: int
    total_amount: int
    discount_text: str = ""
    rows: list[PathRow] = field(default_factory=list)
    roi: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerDocument:
    ref: str  # opaque, stable per tenant and document
    kind: str
    title: str
    intro: str
    state: str  # "open" | "accepted" | "settled" | "declined" | "failed"
    state_text: str
    currency: str
    shared_at: datetime | None
    options: list[DocumentOption]
    evidence: str = ""
    outcomes: list[str] = field(default_factory=list)
    accepted_option: str = ""
    charged_amount: int | None = None
    failure_message: str = ""
    plan_change_id: int | None = None  # billing's PlanChange for the accepted option (its payment), if any


class CustomerDocumentProvider(Protocol):
    def list_for_account(self, tenant: Tenant, account: CustomerAccount) -> list[CustomerDocument]: ...

    def get(self, tenant: Tenant, account: CustomerAccount, ref: str) -> CustomerDocument | None: ...

    def accept(
        self, tenant: Tenant, account: CustomerAccount, ref: str, option_key: str, contact: Contact | None
    ) -> CustomerDocument: ...

    def decline(
        self, tenant: Tenant, account: CustomerAccount, ref: str, reason: str, text: str, contact: Contact | None
    ) -> CustomerDocument: ...

    def retry_payment(
        self, tenant: Tenant, account: CustomerAccount, ref: str, contact: Contact | None
    ) -> CustomerDocument: ...


_PROVIDERS: dict[str, CustomerDocumentProvider] = {}


def register_customer_document_provider(kind: str, provider: CustomerDocumentProvider) -> None:
    _PROVIDERS[kind] = provider


def customer_document_provider(kind: str) -> CustomerDocumentProvider | None:
    return _PROVIDERS.get(kind)


def customer_documents(tenant: Tenant, account: CustomerAccount, kind: str) -> list[CustomerDocument]:
    provider = _PROVIDERS.get(kind)
    return provider.list_for_account(tenant, account) if provider else []


class DocumentLinkBuilder(Protocol):
    def __call__(
        self, tenant: Tenant, *, account: CustomerAccount, kind: str, ref: str, contact: Contact | None, actor: Any
    ) -> str: ...


# The portal registers how a signed link to one document is made (upgrades.apps); the console calls it.
DOCUMENT_LINK_TTL = timedelta(days=7)  # how long a link staff send to one document opens it (once)
DOCUMENT_LINK_BUILDERS: list[DocumentLinkBuilder] = []


def document_link(
    tenant: Tenant, *, account: CustomerAccount, kind: str, ref: str, contact: Contact | None, actor: Any
) -> str:
    """A signed, single-use, expiring link that opens the account's portal on this document."""
    if not DOCUMENT_LINK_BUILDERS:
        raise RuntimeError("No portal is installed to make document links.")
    return DOCUMENT_LINK_BUILDERS[0](tenant, account=account, kind=kind, ref=ref, contact=contact, actor=actor)
