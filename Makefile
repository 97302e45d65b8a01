# Tierwise: `make run` and `make test` on a fresh machine need only Python 3.11, git and make.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Touched after a successful install: pip runs again only when pyproject.toml is newer than it.
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint fmt bench mutation ci migrate clean

help:
	@echo "make run     install, migrate, seed the demo, start web + worker + beat + Stripe stand-in"
	@echo "make test    run the test suite (PYTEST_ARGS=...; DATABASE_URL / REDIS_URL switch to PostgreSQL / Redis)"
	@echo "make lint    ruff check, mypy and the import-linter layering contracts"
	@echo "make fmt     ruff format and ruff check --fix"
	@echo "make bench   run the benchmarks (needs DATABASE_URL)"
	@echo "make mutation  mutation-test pricing, proration and ingest validation against their own tests (slow)"
	@echo "make ci      run .ci/run as CI does"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) scripts/run.py

migrate: $(STAMP)
	DEBUG=1 $(PY) manage.py migrate

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Every check runs even if an earlier one fails, so one run reports everything.
lint: $(STAMP)
	@status=0; \
	echo "ruff check ."; $(VENV)/bin/ruff check . || status=1; \
	echo "mypy"; $(VENV)/bin/mypy || status=1; \
	echo "lint-imports"; $(VENV)/bin/lint-imports --no-cache || status=1; \
	exit $$status

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) bench/run.py

# mutmut on catalog/pricing.py, billing/proration.py and usage/services/ingest.py, each against its own
# tests ([tool.mutmut] in pyproject.toml). Slow: every mutant runs its tests, so it is not part of
# `make test` or CI. Starts from a clean mutants/ so the score is never a stale cache; ends with one
# JSON line per module (timeouts count as killed, as mutmut counts them) and the mutants left alive
# (`.venv/bin/mutmut show NAME` prints one). MUTMUT_CHILDREN=1 on a busy machine.
MUTMUT_CHILDREN ?= 2
mutation: $(STAMP)
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $(MUTMUT_CHILDREN)
	@echo; echo "Not killed:"; $(VENV)/bin/mutmut results
	@echo; $(VENV)/bin/mutmut results --all true | awk '{ \
		status = $$NF; key = $$1; sub(/:$$/, "", key); module = key; sub(/\.x(_|ǁ).*$$/, "", module); \
		gsub(/\./, "/", module); total[module]++; if (status == "killed" || status == "timeout") killed[module]++ } \
		END { for (m in total) printf "{\"figure\": \"mutation_killed_pct\", \"module\": \"%s.py\", \"killed\": %d, \"total\": %d, \"pct\": %.1f, \"command\": \"make mutation\"}\n", \
		m, killed[m], total[m], 100 * killed[m] / total[m] }' | sort

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
