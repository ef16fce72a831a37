# The README's two commands: `make run` and `make test`. Both work from a fresh clone.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
export PORT

.PHONY: run test unit e2e lint build bench clean browser browsers wrk proxy haproxy fleet e2e-fleet messages

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

build: $(STAMP)
	@if [ -f build.py ]; then $(PY) build.py; fi

run: build
	$(PY) -m app

browser:
	@sh scripts/ensure-debian-tool.sh /usr/bin/chromium chromium "the browser tests"

# Firefox ESR and WebKitGTK (WebKitWebDriver, a display, PyGObject for e2e/engines/webkit_browser.py).
browsers: browser
	@sh scripts/ensure-debian-packages.sh "the zero-loss scenarios in Firefox and WebKit (e2e/engines)" \
		firefox-esr webkit2gtk-driver xvfb xauth python3-gi gir1.2-webkit2-4.1

proxy:
	@sh scripts/ensure-debian-tool.sh /usr/sbin/nginx nginx "the reverse-proxy test (deploy/nginx.conf)"

wrk:
	@sh scripts/ensure-debian-tool.sh /usr/bin/wrk wrk "the benchmarks"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: build browsers proxy haproxy lint
	$(PY) -m pytest

unit: build proxy
	$(PY) -m pytest tests

e2e: build browsers
	$(PY) -m pytest e2e

# make bench AGAINST=REF: ingest on this tree and on the git ref REF, in alternating rounds.
bench: build wrk haproxy
	$(PY) -m bench $(if $(AGAINST),--against $(AGAINST))

# After changing a page's words: the template from the sources, then each catalogue brought up to
# date (new messages empty, for the translators; docs/translating.md).
messages: $(STAMP)
	$(PY) -m babel.messages.frontend extract -F babel.cfg --no-location --sort-output -k N_ -k K_ \
		--project vote -o app/locale/messages.pot .
	$(PY) -m babel.messages.frontend update -i app/locale/messages.pot -d app/locale --no-fuzzy-matching \
		--ignore-obsolete --width 100

clean:
	rm -rf $(VENV) dist .pytest_cache test-results

# A fleet on this machine: NODES nodes of the service on PostgreSQL and Redis behind HAProxy
# (deploy/fleet.py, deploy/haproxy.cfg). Ctrl-C stops it all.
NODES ?= 3
# HAProxy for the fleet; PostgreSQL's server programs and redis-server for the fleet test's own.
haproxy:
	@sh scripts/ensure-debian-packages.sh "the fleet (deploy/haproxy.cfg) and its test (e2e/fleet)" \
		haproxy postgresql redis-server

fleet: build haproxy
	$(PY) -m deploy.fleet --nodes $(NODES)

# Chromium voters and scripted clients through the balancer into a 3-node fleet, while a node,
# Redis and PostgreSQL are restarted under them (e2e/fleet/); also part of `make test`.
e2e-fleet: build browser haproxy
	$(PY) -m pytest e2e/fleet
