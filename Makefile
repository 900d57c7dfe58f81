# Nodefleet: `make run` (quick start on SQLite) and `make test` (the suite on PostgreSQL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://root@127.0.0.1:5432/nodefleet

.PHONY: venv run serve test screenshots lint format bench audit-deps clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

## Quick start: write .env.quickstart once (config/quickstart.py: a generated SECRET_KEY, DEBUG, the
## demo login's password; never overwritten, read by every manage.py command of this checkout while
## DATABASE_URL is unset), migrate a local SQLite database, seed the demo fleet, print the login, then
## serve with the simulated host agents beside the server (tools/devserver.py: Ctrl-C stops them all).
## RUN_ADDR picks another address (e.g. `make run RUN_ADDR=127.0.0.1:8001`); AGENT_ARGS the agents'
## behaviour (e.g. `make run AGENT_ARGS="--fail-rate 0.1 --rollback-rate 0.1"`: every change succeeds by default).
RUN_ADDR ?= 127.0.0.1:8000
AGENT_ARGS ?= --interval 2
run: venv
	$(BIN)/python -m config.quickstart
	$(BIN)/python manage.py migrate --no-input -v 0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py demo_login --addr $(RUN_ADDR)
	$(BIN)/python -m tools.devserver \
		"$(BIN)/python manage.py runserver $(RUN_ADDR)" \
		"$(BIN)/python manage.py simulate_agents --url http://$(RUN_ADDR) $(AGENT_ARGS)" \
		"$(BIN)/python manage.py db_worker --interval 0.5 --no-reload"

## Production serving: static files collected (whitenoise serves them), then gunicorn
## (config/gunicorn.py: gthread, WEB_CONCURRENCY workers, default one per core, on BIND). Needs the production environment.
serve: venv
	$(BIN)/python manage.py collectstatic --no-input -v 0
	$(BIN)/gunicorn -c config/gunicorn.py config.wsgi:application

## The whole suite, against PostgreSQL (DATABASE_URL, default the local server).
test: venv
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python -m pytest

## The README's screenshots (docs/screenshots/*.png), taken by the browser tests; `make test`
## writes them to a temporary directory instead.
screenshots: venv
	SCREENSHOTS_DIR=docs/screenshots DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
		$(BIN)/python -m pytest -p no:cacheprovider tests/admin/test_browser.py

## Benchmarks on a dedicated PostgreSQL database (never part of `make test`). The first run
## seeds 10,000 hosts x 100 nodes with seed_demo (a few minutes); figures in docs/performance.md.
bench: venv
	$(BIN)/python -u bench/audit_repair.py
	$(BIN)/python -u bench/upgrade_throughput.py
	$(BIN)/python -u bench/http_throughput.py --configs sync:4,gthread:2x4,gthread:4x2
	$(BIN)/python -u bench/middleware_cost.py
	$(BIN)/python -u bench/admin_pages.py
	$(BIN)/python -u bench/fleet_size.py
	$(BIN)/python -u bench/agent_poll.py
	$(BIN)/python -u bench/auth_cost.py
	$(BIN)/python -u bench/rollout_throughput.py
	$(BIN)/python -u bench/placement_throughput.py

## Known vulnerabilities in the installed dependencies (pip-audit, PyPI's data). Exit 0 clean,
## 1 vulnerable, 3 when it could not audit (index unreachable, or versions it does not know).
audit-deps: venv
	$(BIN)/python tools/audit_deps.py

## ruff, then the import contracts of pyproject.toml [tool.importlinter] (no circle between rooms).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm .env.quickstart staticfiles .pytest_cache
