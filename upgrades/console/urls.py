from django.urls import path

from upgrades.console import views, views_proposals

app_name = "console"

urlpatterns = [
    path("", views.worklist_view, name="worklist"),
    path("views/", views.save_view, name="save_view"),
    path("accounts/<int:account_id>/", views.account_view, name="account"),
    path("accounts/<int:account_id>/notes/", views.add_note, name="add_note"),
    path("accounts/<int:account_id>/tasks/", views.add_task, name="add_task"),
    path("accounts/<int:account_id>/outreach/", views.outreach, name="outreach"),
    path("accounts/<int:account_id>/trial/", views.grant_trial, name="trial"),
    path("accounts/<int:account_id>/grant/", views.grant_csm, name="grant"),
    path("accounts/<int:account_id>/proposals/new/", views_proposals.proposal_new, name="proposal_new"),
    path("tasks/<int:task_id>/close/", views.close_task, name="close_task"),
    path("proposals/", views_proposals.proposal_list, name="proposals"),
    path("proposals/<int:proposal_id>/", views_proposals.proposal_view, name="proposal"),
    path("proposals/<int:proposal_id>/approve/", views_proposals.proposal_approve, name="proposal_approve"),
    path("proposals/<int:proposal_id>/share/", views_proposals.proposal_share, name="proposal_share"),
    path("proposals/<int:proposal_id>/withdraw/", views_proposals.proposal_withdraw, name="proposal_withdraw"),
    path("proposals/<int:proposal_id>/link/", views_proposals.proposal_link, name="proposal_link"),
    path("proposals/<int:proposal_id>/email/", views_proposals.proposal_email, name="proposal_email"),
    path("proposals/<int:proposal_id>/document/", views_proposals.proposal_document, name="proposal_document"),
    path("proposals/<int:proposal_id>/document.pdf", views_proposals.proposal_pdf, name="proposal_pdf"),
    path("playbooks/", views.playbooks_view, name="playbooks"),
    path("playbooks/new/", views.save_playbook, name="playbook_new"),
    path("playbooks/<int:playbook_id>/", views.save_playbook, name="playbook_save"),
    path("playbooks/<int:playbook_id>/objections/", views.add_objection, name="objection_add"),
]
