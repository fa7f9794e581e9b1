# Two commands from a fresh clone: `make repro` and `make test`.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
# The offline `dvc plots` page template (README "Plots"); made from plots/template.html, ignored by Git.
PLOTS_TEMPLATE := plots/build/offline.html

# Stage commands (`python -m stages.X`) and `dvc` itself come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test lint bench lock clean plots-assets plots-export

setup: $(STAMP) $(PLOTS_TEMPLATE)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $@

# Vega, Vega-Lite and Vega-Embed inlined into the plots template, and DVC pointed at it (.dvc/config.local).
$(PLOTS_TEMPLATE): $(STAMP) plots/template.html plots/offline.py
	python -m plots.offline

# The same, forced (e.g. after deleting .dvc/config.local).
plots-assets: $(STAMP)
	python -m plots.offline

# Every chart as SVG and PNG in plots/export/: `make plots-export`, or `make plots-export REVS="main HEAD"`
# for the `dvc plots diff` charts of those revisions (commits, branches or experiment names).
plots-export: setup
	python -m plots.export $(REVS)

repro: setup
	dvc repro

test: lint
	pytest

lint: setup
	ruff check .
	ruff format --check .

bench: setup
	python benchmarks/train_speed.py

# Re-resolve the ranges in pyproject.toml and pin the result (then run `make test`).
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --disable-pip-version-check ".[test]"
	{ sed -n '1,3p' requirements.lock; $(VENV)-lock/bin/python -m pip freeze --exclude mnist-dnn-dvc; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf $(VENV)-lock

clean:
	-dvc config --local --unset plots.html_template 2>/dev/null
	rm -rf $(VENV) dvc_plots .pytest_cache plots/build plots/export
