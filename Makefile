# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
# The links make run's server hands out (customers' pages, emails) point at it, unless given.
# (A server listening on every address, 0.0.0.0, is reached on this machine at 127.0.0.1.)
export SITE_URL ?= http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)

.PHONY: run test install browser check-deploy benchmark-import benchmark-metrics benchmark-clv benchmark-outbox benchmark-fresh-links benchmark-loyalty

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# Front-end libraries (charts) from the npm registry, pinned by package-lock.json.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP) node_modules/.package-lock.json

# The application with demo data on the embedded default (SQLite, in-process tasks).
# DEBUG defaults to 1 here; DEBUG=0 SECRET_KEY=... make run serves the same way.
run: export DEBUG ?= 1
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) seed_demo --if-empty
	$(MANAGE) run_nightly
	$(MANAGE) create_manager --url $(SITE_URL)/
	$(MANAGE) runserver --noreload $(HOST):$(PORT)

# The test suite; with DATABASE_URL set it runs against PostgreSQL.
test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

check-deploy: install
	DEBUG=0 SECRET_KEY=$${SECRET_KEY:-check-deploy-$$(head -c 32 /dev/urandom | base64)} \
	  $(MANAGE) check --deploy

benchmark-import: install
	$(BIN)/python benchmarks/import_orders.py $(BENCH_ARGS)

# The metrics benchmark compares with a pandas reading of the spec; pandas is only needed here.
benchmark-metrics: install
	$(BIN)/pip install --quiet "pandas>=2.2"
	$(BIN)/python benchmarks/metrics.py $(BENCH_ARGS)

# The CLV benchmark compares with the `lifetimes` package, unmaintained and carrying pandas,
# autograd and dill: it gets a venv of its own under var/ (the application's stays as it is),
# with the numpy and scipy of the application's venv so that both fit on the same builds.
BENCH_VENV ?= var/bench-lifetimes
benchmark-clv: install
	$(BIN)/pip install --quiet threadpoolctl
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BIN)/pip freeze | grep -iE '^(numpy|scipy)==' > $(BENCH_VENV)/constraints.txt
	$(BENCH_VENV)/bin/pip install --quiet -c $(BENCH_VENV)/constraints.txt \
	  "lifetimes==0.11.3" threadpoolctl
	$(BIN)/python benchmarks/clv.py --lifetimes-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

benchmark-outbox: install
	$(BIN)/python benchmarks/outbox.py $(BENCH_ARGS)

benchmark-fresh-links: install
	$(BIN)/python benchmarks/fresh_links.py $(BENCH_ARGS)

# Loyalty on PostgreSQL: earning on a 1M-order import, reconciling 1M accounts, concurrent
# redemptions; drops and recreates its scratch database (loyalty_bench unless --database-url).
benchmark-loyalty: install
	$(BIN)/python benchmarks/loyalty.py $(BENCH_ARGS)
