"""The compose file runs the app as the unprivileged role and only migrate as the owner."""

from __future__ import annotations

from tests.test_runtime import ROOT, load_compose


def test_compose_runs_the_app_as_the_app_role_and_gives_the_owner_to_migrate_alone():
    services = load_compose()["services"]
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://tierwise_app:"), name
    assert services["migrate"]["environment"]["DATABASE_OWNER_URL"].startswith("postgres://tierwise:")
    for name in ("web", "worker", "beat"):
        assert "DATABASE_OWNER_URL" not in services[name]["environment"], name
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (ROOT / init[0].split(":")[0]).exists()
    script = (ROOT / init[0].split(":")[0].removeprefix("./")).read_text()
    assert "CREATE ROLE tierwise_app LOGIN NOSUPERUSER NOBYPASSRLS" in script
