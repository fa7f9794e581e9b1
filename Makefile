# Two commands from a fresh clone: `make repro` and `make test`.
# Portable to GNU make 3.81 (macOS's) and BSD userland: no GNU-only make features or tool options.
SHELL := /bin/sh
VENV  := .venv
# uv builds the venv from the hash-pinned locks. uv itself comes from PyPI, pinned by version and
# sha256 (tools/uv-requirements.txt), through the chosen Python's pip, into the project's cache: one
# folder per pin and machine, which .tools/uv (ignored by Git) links to, so a fresh clone needs no
# second download.
UV_DIR   := .tools/uv
UV       := $(UV_DIR)/bin/uv
UV_CACHE := $(or $(MNIST_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mnist-dvc)/uv/$(shell \
            cksum < tools/uv-requirements.txt | cut -d' ' -f1)-$(shell uname -s)-$(shell uname -m)
# Never a Python that uv downloads: the venv is made from the one tools/platform-check chose.
export UV_PYTHON_DOWNLOADS  := never
export UV_PYTHON_PREFERENCE := only-system

# ACCELERATOR=cuda adds JAX's CUDA 12 build (requirements-cuda.lock), ACCELERATOR=cpu does not; left
# out, tools/accelerator decides: cuda where `nvidia-smi -L` lists a GPU.
ifeq ($(origin ACCELERATOR),undefined)
ACCELERATOR_WHY := $(shell tools/accelerator --why)
ACCELERATOR     := $(firstword $(ACCELERATOR_WHY))
else
ACCELERATOR_WHY := $(ACCELERATOR) (ACCELERATOR=$(ACCELERATOR) given)
endif
ifneq ($(filter-out cpu cuda,$(ACCELERATOR))$(words $(ACCELERATOR)),1)
$(error ACCELERATOR=$(ACCELERATOR): use cpu or cuda, or leave it out to detect a GPU)
endif
# The TensorFlow backend (`train.backend: tensorflow`) is a lock of its own, a third of the download,
# which the default JAX pipeline never imports: TENSORFLOW=cpu adds tensorflow-cpu
# (requirements-tensorflow.lock), TENSORFLOW=cuda tensorflow[and-cuda] (requirements-tensorflow-cuda.lock).
# Left out, `make setup` and `make repro` install none; `make test` and `make bench` add the cpu one.
TENSORFLOW ?=
ifneq ($(filter-out cpu cuda,$(TENSORFLOW))$(filter-out 0 1,$(words $(TENSORFLOW))),)
$(error TENSORFLOW=$(TENSORFLOW): use cpu (tensorflow-cpu) or cuda (tensorflow[and-cuda]), or leave it out for none)
endif
ifeq ($(origin TENSORFLOW)$(TENSORFLOW),command line)
$(error TENSORFLOW=: use cpu (tensorflow-cpu) or cuda (tensorflow[and-cuda]), or leave it out for none)
endif

LOCKS := requirements.lock $(if $(filter cuda,$(ACCELERATOR)),requirements-cuda.lock)
# Named after the choice and the locks' contents: a second `make setup` does nothing.
STAMP := $(VENV)/.installed-$(ACCELERATOR)-$(shell cat $(LOCKS) | cksum | cut -d' ' -f1)
TF_LOCK_cpu   := requirements-tensorflow.lock
TF_LOCK_cuda  := requirements-tensorflow-cuda.lock
TF_STAMP_cpu  := $(VENV)/.tensorflow-cpu-$(shell cat $(TF_LOCK_cpu) | cksum | cut -d' ' -f1)
TF_STAMP_cuda := $(VENV)/.tensorflow-cuda-$(shell cat $(TF_LOCK_cuda) | cksum | cut -d' ' -f1)
TF_STAMP      := $(if $(TENSORFLOW),$(TF_STAMP_$(TENSORFLOW)))
TF_FOR_TESTS  := $(TF_STAMP_$(or $(TENSORFLOW),cpu))
# The offline `dvc plots` page template (README "Plots"); made from plots/template.html, ignored by Git.
PLOTS_TEMPLATE := plots/build/offline.html

# Supported machine, and which installed CPython (3.11-3.13) the venv is made from: tools/platform-check,
# before anything is downloaded, only while the venv or uv is still to be made. PYTHON=... names the
# interpreter; left out, python3 if it is in range, else the newest of python3.13, python3.12,
# python3.11 on PATH. Anything unsupported stops here in one line.
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),setup)),)
ifeq ($(wildcard $(STAMP)),)
NEED_PYTHON := 1
endif
ifeq ($(wildcard $(UV)),)
NEED_PYTHON := 1
endif
endif
ifdef NEED_PYTHON
PLATFORM := $(shell tools/platform-check $(PYTHON) 2>&1)
ifneq ($(firstword $(PLATFORM)),python:)
$(error $(PLATFORM))
endif
SETUP_PYTHON := $(word 2,$(PLATFORM))
SETUP_PYTHON_WHY := $(wordlist 3,$(words $(PLATFORM)),$(PLATFORM))
endif

# Stage commands (`python -m stages.X`, run by dvc) find the venv's python first on PATH; the
# recipes call the venv's programs by path as well (make 3.81 looks commands up on its own PATH).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test lint bench lock clean plots-assets plots-export

setup: $(STAMP) $(PLOTS_TEMPLATE) $(TF_STAMP)

# A fresh venv, then exactly the locks' packages for this machine (the lines whose markers match),
# each checked against its sha256 (`uv pip sync` removes anything else). uv's cache is ~/.cache/uv
# (UV_CACHE_DIR), not pip's. No `--compile-bytecode` (28.5 s here): tools/bytecode writes the .pyc
# of what the stages, dvc and pytest import, from its own cache when it has them.
$(STAMP): $(LOCKS) | $(UV)
	@echo "setup: Python $(SETUP_PYTHON) $(SETUP_PYTHON_WHY)"
	@echo "setup: accelerator $(ACCELERATOR_WHY)"
	rm -rf $(VENV)
	$(UV) venv --quiet --python $(SETUP_PYTHON) $(VENV)
	$(UV) pip sync --quiet --require-hashes --python $(VENV)/bin/python $(LOCKS)
	$(VENV)/bin/python tools/bytecode
	touch $@

# The TensorFlow backend, added to the venv; one build at a time (tensorflow-cpu and tensorflow both
# install the `tensorflow` module). Its bytecode is written at its first import.
$(TF_STAMP_cpu): $(STAMP) $(TF_LOCK_cpu)
	$(call add_tensorflow,$(TF_LOCK_cpu))
$(TF_STAMP_cuda): $(STAMP) $(TF_LOCK_cuda)
	$(call add_tensorflow,$(TF_LOCK_cuda))
define add_tensorflow
	@echo "setup: the TensorFlow backend from $(1)"
	$(UV) pip uninstall --quiet --python $(VENV)/bin/python tensorflow tensorflow-cpu
	$(UV) pip install --quiet --require-hashes --python $(VENV)/bin/python -r $(1)
	rm -f $(VENV)/.tensorflow-*
	touch $@
endef

# uv, from the chosen Python's pip: quiet (-qq shows errors only, not this machine's pip.conf notes
# or the running-as-root warning), hash-checked, wheels only. --target, a folder of its own, is
# allowed on an externally managed (PEP 668) Python too.
$(UV): tools/uv-requirements.txt
	rm -rf $(UV_DIR)
	test -x $(UV_CACHE)/bin/uv || { rm -rf $(UV_CACHE).partial && \
		$(SETUP_PYTHON) -m pip install -qq --disable-pip-version-check --no-warn-script-location \
		--require-hashes --only-binary=:all: --no-deps --target $(UV_CACHE).partial -r tools/uv-requirements.txt && \
		mv $(UV_CACHE).partial $(UV_CACHE); }
	mkdir -p $(dir $(UV_DIR)) && ln -s $(UV_CACHE) $(UV_DIR)
	touch $@

# Vega, Vega-Lite and Vega-Embed inlined into the plots template, and DVC pointed at it (.dvc/config.local).
$(PLOTS_TEMPLATE): $(STAMP) plots/template.html plots/offline.py
	$(VENV)/bin/python -m plots.offline

# The same, forced (e.g. after deleting .dvc/config.local).
plots-assets: $(STAMP)
	$(VENV)/bin/python -m plots.offline

# Every chart as SVG and PNG in plots/export/: `make plots-export`, or `make plots-export REVS="main HEAD"`
# for the `dvc plots diff` charts of those revisions (commits, branches or experiment names).
plots-export: setup
	$(VENV)/bin/python -m plots.export $(REVS)

repro: setup
	$(VENV)/bin/dvc repro

test: lint $(TF_FOR_TESTS)
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup $(TF_FOR_TESTS)
	$(VENV)/bin/python -m benchmarks.train_speed

# Re-resolve the locks, each one universal (`--universal`: one file for every supported machine,
# platform-specific lines carry environment markers, e.g. tensorflow-cpu on Linux x86_64 and
# tensorflow elsewhere), every file's sha256 included: pyproject.toml's ranges -> requirements.lock,
# then requirements-cuda.in and requirements-tensorflow-cuda.in, constrained to it -> the two CUDA
# locks (Linux only). uv keeps a lock's current pins where they still fit; `make lock UPGRADE=1`
# takes the newest that fit. Then `make test` (tests/test_setup.py dry-runs every lock on every
# supported machine and Python).
UV_COMPILE = $(UV) pip compile --quiet --universal --generate-hashes --python-version 3.11 \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
lock: | $(UV)
	$(UV_COMPILE) pyproject.toml --extra test -o requirements.lock
	$(UV_COMPILE) requirements-cuda.in -c requirements.lock -o requirements-cuda.lock
	$(UV_COMPILE) requirements-tensorflow.in -c requirements.lock -o requirements-tensorflow.lock
	$(UV_COMPILE) requirements-tensorflow-cuda.in -c requirements.lock -c requirements-cuda.lock \
		-c requirements-tensorflow.lock -o requirements-tensorflow-cuda.lock

clean:
	-$(VENV)/bin/dvc config --local --unset plots.html_template 2>/dev/null
	rm -rf $(VENV) .tools dvc_plots .pytest_cache plots/build plots/export
