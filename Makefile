# Two set-up commands: `make demo` (the whole curriculum on this machine) and `make test`.
# Both create and reuse one virtual environment at .venv; caches live outside the repo.

PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
CACHE     ?= $(HOME)/.cache/sailvl
STAMP     := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
PYTEST_ARGS ?=

export DS_BUILD_OPS := 0
export DS_ACCELERATOR := cpu
export TORCH_EXTENSIONS_DIR := $(CACHE)/torch_extensions
export SAILVL_CACHE := $(CACHE)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_CACHE_DIR := $(CACHE)/pip
# (It holds the wheels pip builds from sdists, shared with build-images.sh. Downloads are
# cached there only where the index's responses carry Cache-Control; this machine's proxy
# strips it, so a venv rebuild downloads torch again.) The venv is installed in one pass:
# this index serves no separate wheel metadata (PEP 658), so a resolution alone (`pip
# install --dry-run`, as images/cpu-requirements.py does) downloads every wheel in full
# (5.7 GB written in 4 min, then downloaded again by the install). triton (the GPU kernel
# compiler, never loaded on CPU; the job-cpu image leaves it out too) is removed after.

.PHONY: venv test lint unit demo crds cluster cluster-demo tools bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[operator,train,dev]'
	$(BIN)/pip uninstall -q -y triton
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Tools that are not Python packages: promtool (Debian), a CJK font (Debian; the
# understanding suite's Chinese sets), helm and the control plane (built from Go modules
# into $(CACHE), reused when present); LMDeploy in a venv of its own
# ($(CACHE)/lmdeploy-venv, keyed by images/lmdeploy-requirements.txt) for its contract test.
# tests/tools.sh runs the Go builds and the downloads side by side, one log per step.
# No tool needs the venv, so `make test` builds the two at once (`-j2`).
tools:
	bash tests/tools.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test:
	$(MAKE) --no-print-directory -j2 venv tools
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: venv
	$(BIN)/sailvl run examples/demo/curriculum.yaml

crds: venv
	$(BIN)/sailvl crds

# `make cluster REAL_NODE=1` adds a real worker node (containerd, kubelet, the images).
cluster: venv tools
	$(BIN)/python -m tests.cluster.controlplane.harness $(if $(REAL_NODE),--real-node)

# `make cluster-demo` (root): the demo Curriculum through real pods: control plane + real
# node, the chart installed by Helm, S3 on the pod network, the rows of `kubectl get sailvl`
# that change as it runs (kubectl cannot -w a category), then the same report as `make
# demo` (runs/cluster-demo/report/summary.md); stops everything. About 21 min on 2 cores.
cluster-demo: venv tools
	$(BIN)/python -m tests.cluster.controlplane.clusterdemo

# Each bench writes benchmarks/results/<bench>.json; the table in benchmarks/README.md
# is regenerated from those files (BENCHES=tests/bench/bench_packing.py runs just one).
BENCHES ?= $(wildcard tests/bench/bench_*.py)
bench: venv
	for f in $(BENCHES); do echo "== $$f"; $(BIN)/python $$f || exit 1; done
	$(BIN)/python tests/bench/report.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
