import pytest

from accounts.models import AuditEntry, Contact, CustomerAccount

pytestmark = pytest.mark.django_db


def test_create_account_stores_it_and_audits(world_a):
    api = world_a.api("write", "read")
    body = {
        "external_id": "org_42",
        "name": "Fortytwo Ltd",
        "industry": "fintech",
        "size_band": "51-200",
        "segment": "mid_market",
        "lifecycle_stage": "onboarding",
        "assigned_csm": "csm@tenant-a.test",
        "attributes": {"plan_source": "web"},
    }
    response = api.post("/api/v1/accounts", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["assigned_csm"] == "csm@tenant-a.test"
    account = CustomerAccount.objects.for_tenant(world_a.tenant).get(external_id="org_42")
    assert account.assigned_csm == world_a.staff["csm"]
    entry = AuditEntry.objects.for_tenant(world_a.tenant).get(action="account.created", object_id=str(account.pk))
    assert entry.actor_label.startswith("api-key:")
    assert entry.after["name"] == "Fortytwo Ltd"


def test_create_account_names_each_bad_field_and_writes_nothing(world_a):
    api = world_a.api("write")
    response = api.post(
        "/api/v1/accounts",
        {"external_id": "bad id!", "name": "", "size_band": "huge", "employee_count": -3},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]) == {"external_id", "name", "size_band", "employee_count"}
    assert CustomerAccount.objects.for_tenant(world_a.tenant).count() == 1


def test_create_account_refuses_a_csm_of_another_tenant(two_tenants):
    a, b = two_tenants
    response = a.api("write").post(
        "/api/v1/accounts", {"external_id": "x1", "name": "X", "assigned_csm": "csm@tenant-b.test"}, format="json"
    )
    assert response.status_code == 400
    assert "assigned_csm" in response.json()["error"]["details"]


def test_duplicate_external_id_is_a_409_with_the_field(world_a):
    response = world_a.api("write").post("/api/v1/accounts", {"external_id": "acct-1", "name": "Again"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"external_id": ["Already in use."]}


def test_list_is_paginated_and_filtered(world_a):
    for i in range(3):
        CustomerAccount.objects.create(
            tenant=world_a.tenant, external_id=f"t{i}", name=f"Trial {i}", lifecycle_stage="trial"
        )
    api = world_a.api("read")
    body = api.get("/api/v1/accounts?lifecycle_stage=trial&page_size=2").json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


def test_patch_changes_only_given_fields_and_audits_the_difference(world_a):
    api = world_a.api("write", "read")
    response = api.patch("/api/v1/accounts/acct-1", {"lifecycle_stage": "expansion"}, format="json")
    assert response.status_code == 200, response.content
    world_a.account.refresh_from_db()
    assert world_a.account.lifecycle_stage == "expansion"
    assert world_a.account.industry == "software"
    entry = AuditEntry.objects.for_tenant(world_a.tenant).get(action="account.updated")
    assert entry.before == {"lifecycle_stage": "active"}
    assert entry.after == {"lifecycle_stage": "expansion"}


def test_contacts_nested_under_account(world_a):
    api = world_a.api("write", "read")
    created = api.post("/api/v1/accounts/acct-1/contacts", {"email": "CTO@Customer.test", "role": "cto"}, format="json")
    assert created.status_code == 201, created.content
    listed = api.get("/api/v1/accounts/acct-1/contacts").json()
    assert {c["email"] for c in listed["results"]} == {"buyer@customer.test", "cto@customer.test"}
    dup = api.post("/api/v1/accounts/acct-1/contacts", {"email": "cto@customer.test"}, format="json")
    assert dup.status_code == 409
    german = api.post("/api/v1/accounts/acct-1/contacts", {"email": "cfo@customer.test", "locale": "de_DE"},
                      format="json")  # fmt: skip
    assert german.status_code == 201 and german.json()["locale"] == "de_DE"
    wrong = api.post("/api/v1/accounts/acct-1/contacts", {"email": "coo@customer.test", "locale": "xx_nope"},
                     format="json")  # fmt: skip
    assert wrong.status_code == 400 and "locale" in wrong.json()["error"]["details"]
    assert not world_a.account.contacts.filter(email="coo@customer.test").exists()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/accounts/{ext}", None),
        ("patch", "/api/v1/accounts/{ext}", {"name": "Hijacked"}),
        ("get", "/api/v1/accounts/{ext}/contacts", None),
        ("post", "/api/v1/accounts/{ext}/contacts", {"email": "spy@evil.test"}),
    ],
)
def test_other_tenants_accounts_answer_404_and_stay_untouched(two_tenants, method, path, body):
    a, b = two_tenants
    foreign = CustomerAccount.objects.create(tenant=b.tenant, external_id="only-in-b", name="B's secret")
    response = getattr(a.api("read", "write"), method)(path.format(ext=foreign.external_id), body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "secret" not in response.content.decode()
    foreign.refresh_from_db()
    assert foreign.name == "B's secret"
    assert not Contact.objects.filter(email="spy@evil.test").exists()


def test_same_external_id_in_both_tenants_resolves_to_the_callers(two_tenants):
    a, b = two_tenants
    assert a.api("read").get("/api/v1/accounts/acct-1").json()["name"] == "Tenant A Customer"
    assert b.api("read").get("/api/v1/accounts/acct-1").json()["name"] == "Tenant B Customer"
    listed = a.api("read").get("/api/v1/accounts").json()
    assert [r["name"] for r in listed["results"]] == ["Tenant A Customer"]


def test_unknown_api_path_is_json_404(world_a):
    response = world_a.api("read").get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/accounts" in schema.content
    assert client.get("/api/v1/docs/").status_code == 200
