# Two commands from a fresh clone: `make repro` and `make test`.
PYTHON ?= python3
VENV   := .venv
# uv builds the venv from the hash-pinned locks. uv itself comes from PyPI, pinned by version and
# sha256 (tools/uv-requirements.txt), through the system pip into .tools/uv (ignored by Git).
UV_DIR := .tools/uv
UV     := $(UV_DIR)/bin/uv
# Never a Python that uv downloads: the venv is made from $(PYTHON).
export UV_PYTHON_DOWNLOADS  := never
export UV_PYTHON_PREFERENCE := only-system

# ACCELERATOR=cuda adds JAX's CUDA 12 build (requirements-cuda.lock), ACCELERATOR=cpu does not; left
# out, tools/accelerator decides: cuda where `nvidia-smi -L` lists a GPU. TENSORFLOW=cuda installs
# tensorflow[and-cuda] (requirements-tensorflow-cuda.lock) in place of tensorflow-cpu.
ifeq ($(origin ACCELERATOR),undefined)
ACCELERATOR_WHY := $(shell tools/accelerator --why)
ACCELERATOR     := $(firstword $(ACCELERATOR_WHY))
else
ACCELERATOR_WHY := $(ACCELERATOR) (ACCELERATOR=$(ACCELERATOR) given)
endif
TENSORFLOW ?= cpu
ifneq ($(filter-out cpu cuda,$(ACCELERATOR))$(words $(ACCELERATOR)),1)
$(error ACCELERATOR=$(ACCELERATOR): use cpu or cuda, or leave it out to detect a GPU)
endif
ifneq ($(filter-out cpu cuda,$(TENSORFLOW))$(words $(TENSORFLOW)),1)
$(error TENSORFLOW=$(TENSORFLOW): use cpu (tensorflow-cpu, the default) or cuda (tensorflow[and-cuda]))
endif

LOCKS := requirements.lock $(if $(filter cuda,$(ACCELERATOR)),requirements-cuda.lock) \
         $(if $(filter cuda,$(TENSORFLOW)),requirements-tensorflow-cuda.lock)
# Named after the choices and the locks' contents: a second `make setup` does nothing.
STAMP := $(VENV)/.installed-$(ACCELERATOR)-tensorflow-$(TENSORFLOW)-$(shell cat $(LOCKS) | cksum | cut -d' ' -f1)
# tensorflow-cpu and tensorflow both install the `tensorflow` module, so with TENSORFLOW=cuda the
# venv is synced from a copy of requirements.lock without tensorflow-cpu's entry (its line and the
# indented hash lines under it).
NO_TF_CPU := $(VENV)/requirements-without-tensorflow-cpu.lock
SYNC_LOCKS := $(if $(filter cuda,$(TENSORFLOW)),$(NO_TF_CPU),requirements.lock) $(filter-out requirements.lock,$(LOCKS))
# The offline `dvc plots` page template (README "Plots"); made from plots/template.html, ignored by Git.
PLOTS_TEMPLATE := plots/build/offline.html

# Stage commands (`python -m stages.X`) and `dvc` itself come from the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test lint bench lock clean plots-assets plots-export

setup: $(STAMP) $(PLOTS_TEMPLATE)

# A fresh venv, then exactly the locks' packages, each checked against its sha256 (`uv pip sync`
# removes anything else). uv's cache is ~/.cache/uv (UV_CACHE_DIR), not pip's.
$(STAMP): $(LOCKS) | $(UV)
	@echo "setup: accelerator $(ACCELERATOR_WHY)$(if $(filter cuda,$(TENSORFLOW)), and TensorFlow's CUDA build)"
	rm -rf $(VENV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(if $(filter cuda,$(TENSORFLOW)),awk '/^[^ #]/ { skip = /^tensorflow-cpu==/ } !skip' requirements.lock > $(NO_TF_CPU))
	$(UV) pip sync --quiet --require-hashes --compile-bytecode --python $(VENV)/bin/python $(SYNC_LOCKS)
	touch $@

# uv, from the system Python's pip: quiet (-qq shows errors only, not this machine's pip.conf notes
# or the running-as-root warning), hash-checked, wheels only. --target, a folder of its own, is
# allowed on an externally managed (PEP 668) Python too.
$(UV): tools/uv-requirements.txt
	rm -rf $(UV_DIR)
	$(PYTHON) -m pip install -qq --disable-pip-version-check --no-warn-script-location \
		--require-hashes --only-binary=:all: --target $(UV_DIR) -r tools/uv-requirements.txt
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
	python -m benchmarks.train_speed

# Re-resolve the locks, for CPython 3.11 on Linux x86_64, every file's sha256 included:
# pyproject.toml's ranges -> requirements.lock, then requirements-cuda.in and
# requirements-tensorflow-cuda.in, constrained to it -> the two CUDA locks. uv keeps a lock's
# current pins where they still fit; `make lock UPGRADE=1` takes the newest that fit. Then `make test`.
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
lock: | $(UV)
	$(UV_COMPILE) pyproject.toml --extra test -o requirements.lock
	$(UV_COMPILE) requirements-cuda.in -c requirements.lock -o requirements-cuda.lock
	$(UV_COMPILE) requirements-tensorflow-cuda.in -c requirements.lock -c requirements-cuda.lock \
		-o requirements-tensorflow-cuda.lock

clean:
	-dvc config --local --unset plots.html_template 2>/dev/null
	rm -rf $(VENV) .tools dvc_plots .pytest_cache plots/build plots/export
