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

# The tests use up to two cores (`make test TEST_JOBS=1` for one): the unit tests on pytest-xdist
# workers, a whole test file per worker (its module fixtures, e.g. compiled firmware, are built
# once); the notebooks in two processes, 04 -> 05 -> 06 in order in one (they hand files to each
# other, as they do for a learner) and 00-03 in the other.
TEST_JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(2, os.cpu_count() or 1))' 2>/dev/null || echo 1)
UNIT_PYTEST := TINYML_BLOCK_NETWORK=1 $(PY) -m pytest -q --durations=5 \
               $(if $(filter-out 0 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile,)
NB_PYTEST   := TINYML_SMOKE=1 TINYML_BLOCK_NETWORK=1 $(PY) -m pytest --nbval-lax -q --durations=5
NB_HANDOFF  := $(sort $(wildcard notebooks/04_*.ipynb notebooks/05_*.ipynb notebooks/06_*.ipynb))
NB_OTHERS   := $(filter-out $(NB_HANDOFF),$(sort $(wildcard notebooks/*.ipynb)))
# The second process's report is printed after the first's, not interleaved with it.
define RUN_NOTEBOOKS
if [ "$(TEST_JOBS)" -ge 2 ] 2>/dev/null; then \
  log=$$(mktemp); \
  $(NB_PYTEST) $(NB_OTHERS) >"$$log" 2>&1 & others=$$!; \
  $(NB_PYTEST) $(NB_HANDOFF); handoff=$$?; \
  wait $$others; others=$$?; cat "$$log"; rm -f "$$log"; \
  [ $$others = 0 ] && [ $$handoff = 0 ]; \
else \
  $(NB_PYTEST) notebooks; \
fi
endef

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
	$(UNIT_PYTEST)

notebooks: setup
	@$(RUN_NOTEBOOKS)

test: setup
	$(UNIT_PYTEST)
	@$(RUN_NOTEBOOKS)

bench: setup
	$(PY) -m tinyml_helpers.bench

slides: setup
	$(PY) -m tinyml_helpers.slides

# Point the README's Binder badge at the published GitHub repository (REPO=owner/repo, or the origin remote).
binder-badge: setup
	$(PY) -m tinyml_helpers.scripts.binder_badge $(if $(REPO),--repo $(REPO)) $(if $(REF),--ref $(REF))

clean-artifacts:
	rm -rf artifacts
