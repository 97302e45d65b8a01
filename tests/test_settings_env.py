"""An empty variable means "not set", for every variable the README lists (issue: `DATABASE_URL=` crashed
settings with KeyError 'ENGINE')."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DUMP = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({k: getattr(settings, k) for k in dir(settings) if k.isupper()}, default=str, sort_keys=True))"
)


def readme_variables() -> list[str]:
    """Every `NAME` in the first column of the README's configuration table, and the ones it lists after it."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 5)]
    names = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", section, flags=re.M))
    names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`(?:, `[A-Z_]+`)* \|", section))
    names |= set(re.findall(r"`([A-Z][A-Z0-9_]{2,})` \(", section))
    return sorted(names)


def run(code: str, variables: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in readme_variables() and not k.startswith("DJANGO_")}
    env = {**base, "DJANGO_SETTINGS_MODULE": "config.settings", **variables}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_readme_lists_the_variables_this_test_empties():
    names = readme_variables()
    assert {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "CONN_MAX_AGE", "DEBUG", "SECRET_KEY"} <= set(names)
    assert {"PORT", "STRIPE_PORT", "WEB", "TIERWISE_VAR_DIR"} <= set(names)


def test_every_readme_variable_set_empty_gives_the_same_settings_as_leaving_it_unset():
    keep = {"DEBUG": "1"}  # development mode, so that no variable is required
    empty = run(DUMP, {**{name: "" for name in readme_variables()}, **keep})
    unset = run(DUMP, keep)
    assert empty.returncode == 0, empty.stderr[-3000:]
    assert unset.returncode == 0, unset.stderr[-3000:]
    assert json.loads(empty.stdout) == json.loads(unset.stdout)
    assert json.loads(empty.stdout)["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_empty_debug_and_secret_key_mean_production_without_a_key_which_refuses_to_start():
    result = run(DUMP, {name: "" for name in readme_variables()})
    assert result.returncode != 0
    assert "ImproperlyConfigured: Set the SECRET_KEY environment variable" in result.stderr, result.stderr[-2000:]


def test_make_run_reads_its_empty_variables_as_unset():
    result = subprocess.run(
        [sys.executable, "scripts/run.py", "--help"],
        cwd=ROOT,
        env={**os.environ, "PORT": "", "STRIPE_PORT": "", "WEB": "", "TIERWISE_VAR_DIR": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
