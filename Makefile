# Two commands for learners:  `make lab` (set up + launch)  and  `make test` (set up + test).
# Everything is installed into .venv inside the repo; nothing outside it is touched.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FIRST_NOTEBOOK := notebooks/00_why_tinyml.ipynb
LAB_SETTINGS   := $(VENV)/share/jupyter/lab/settings
# Run as root (containers, CI) or without a display: do not try to open a browser.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,) \
             $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

.PHONY: setup lab test unit notebooks bench slides binder-badge clean-artifacts

# The tests run on up to two pytest-xdist workers (TEST_JOBS=1 make test for one). conftest.py
# keeps together what must not be split: a test file's tests (module fixtures), a notebook's
# cells (one kernel), and notebooks 04 -> 05 -> 06, which hand files to each other.
TEST_JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(2, os.cpu_count() or 1))' 2>/dev/null || echo 1)
XDIST     := -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder

setup: $(STAMP)

# requirements.lock pins the whole tree with hashes, resolved on Linux x86_64 / Python 3.11;
# elsewhere (macOS, Windows, other Pythons) pip resolves requirements.txt's top-level pins.
LOCK_FITS := $(shell $(PYTHON) -c 'import sys, platform; print(int(sys.version_info[:2] == (3, 11) and sys.platform == "linux" and platform.machine() == "x86_64"))' 2>/dev/null)

$(STAMP): requirements.txt requirements.lock pyproject.toml binder/jupyterlab-overrides.json
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed, found " + sys.version'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if [ "$(LOCK_FITS)" = 1 ]; then \
	  $(PY) -m pip install --quiet --require-hashes -r requirements.lock; \
	else \
	  echo "requirements.lock is for Linux x86_64 / Python 3.11: installing requirements.txt's pins instead"; \
	  $(PY) -m pip install --quiet -r requirements.txt; \
	fi
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (TinyML course)" >/dev/null
	mkdir -p $(LAB_SETTINGS) && cp binder/jupyterlab-overrides.json $(LAB_SETTINGS)/overrides.json
	touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/$(FIRST_NOTEBOOK)

unit: setup
	$(PY) -m pytest -q --durations=5 $(XDIST)

notebooks: setup
	TINYML_SMOKE=1 TINYML_BLOCK_NETWORK=1 $(PY) -m pytest --nbval-lax notebooks -q --durations=10 $(XDIST)

test: setup
	TINYML_BLOCK_NETWORK=1 $(PY) -m pytest -q --durations=5 $(XDIST)
	TINYML_SMOKE=1 TINYML_BLOCK_NETWORK=1 $(PY) -m pytest --nbval-lax notebooks -q --durations=10 $(XDIST)

bench: setup
	$(PY) -m tinyml_helpers.bench

slides: setup
	$(PY) -m tinyml_helpers.slides

# Point the README's Binder badge at the published GitHub repository (REPO=owner/repo, or the origin remote).
binder-badge: setup
	$(PY) -m tinyml_helpers.scripts.binder_badge $(if $(REPO),--repo $(REPO)) $(if $(REF),--ref $(REF))

clean-artifacts:
	rm -rf artifacts
