# medimg: `make app` sets up and starts the studio; `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# The tests read the real datasets from ../shared/data unless MEDIMG_DATA_DIR says otherwise;
# the app uses $MEDIMG_DATA_DIR or its default download folder (~/.cache/medimg).
TEST_DATA ?= $(abspath ../shared/data)

.PHONY: setup setup-dev browser app test docs wheel

# The requirements, then this project itself, editable and without its (already installed) dependencies:
# that puts the `medimg` command into $(VENV)/bin and lets it find the shipped models in assets/.
$(VENV)/.installed: requirements.txt requirements-audit.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev browser

# Debian's Chromium for the end-to-end tests (Playwright drives /usr/bin/chromium; no browser download).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

app: setup
	$(PY) -m streamlit run streamlit_app.py --server.port $(PORT)

test: setup-dev
	MEDIMG_DATA_DIR="$${MEDIMG_DATA_DIR:-$(TEST_DATA)}" $(PY) -m pytest

# The documentation site (mkdocs.yml, docs/) on http://127.0.0.1:$(DOCS_PORT), rebuilt on every change.
DOCS_PORT ?= 8000
docs: $(VENV)/.installed-dev
	$(PY) -m mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

# A wheel that carries the shipped models, cards, embedding maps and examples as package data (pyproject.toml), so
# `pip install .whl/medimg-*.whl` predicts and serves them without the checkout. Built in-tree (build/ is ignored).
wheel: setup
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation --wheel-dir .whl .
