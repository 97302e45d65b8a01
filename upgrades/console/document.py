"""A proposal as a document: the same figures the portal and the console show, as HTML and as PDF
(WeasyPrint renders the HTML; the PDF's text is the HTML's)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from accounts.models import Tenant
from upgrades.console import selectors
from upgrades.console.models import Proposal


def proposal_context(tenant: Tenant, proposal: Proposal) -> dict[str, Any]:
    return {"tenant": tenant, "proposal": proposal, "options": selectors.proposal_options(tenant, proposal)}


def proposal_html(tenant: Tenant, proposal: Proposal) -> str:
    return render_to_string("console/proposal_document.html", proposal_context(tenant, proposal))


def proposal_pdf(tenant: Tenant, proposal: Proposal) -> bytes:
    from weasyprint import HTML

    return HTML(string=proposal_html(tenant, proposal)).write_pdf()
