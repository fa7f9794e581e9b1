# Two commands from a fresh clone: `make repro` and `make test`.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

# Stage commands (`python -m stages.X`) and `dvc` itself come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test lint bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $@

repro: setup
	dvc repro

test: setup
	ruff check .
	pytest

lint: setup
	ruff check .

bench: setup
	python benchmarks/train_speed.py

# Re-resolve the ranges in pyproject.toml and pin the result (then run `make test`).
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --disable-pip-version-check ".[test]"
	{ sed -n '1,3p' requirements.lock; $(VENV)-lock/bin/python -m pip freeze --exclude mnist-dnn-dvc; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf $(VENV)-lock

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
