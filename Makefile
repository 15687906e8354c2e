# The two commands a fresh machine needs: `make demo` and `make test`.
# Each bootstraps .venv with pinned torch/torchvision (from the machine's local package index)
# and, when run as root, Debian's Fashion-MNIST package and Debian's chromium (for the report's
# headless-browser test).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.trendcli-installed
FMNIST  := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
CHROMIUM := /usr/bin/chromium
TORCH   := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test bench clean-runs readme-findings

setup: $(STAMP) $(FMNIST) $(CHROMIUM)

$(STAMP): pyproject.toml plugins/trend-example/pyproject.toml plugins/trend-timm/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test,onnx2torch]' $(TORCH)
	$(BIN)/pip install -q -e plugins/trend-example
	$(BIN)/pip install -q -e plugins/trend-timm $(TORCH)
	touch $(STAMP)

$(FMNIST):
	@if [ -f $(FMNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null; \
	else echo "note: Fashion-MNIST not found; as root: apt-get install dataset-fashion-mnist (or pass --data-dir)"; fi

$(CHROMIUM):
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) >/dev/null \
	  || echo "note: could not install chromium; the report's browser test is skipped"; \
	else echo "note: chromium not found; the report's browser test is skipped (as root: apt-get install chromium)"; fi

demo: setup
	$(BIN)/trend run examples/fashion-mnist.toml

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean-runs:
	rm -rf runs

readme-findings: setup
	$(BIN)/trend report runs/fashion-mnist --out runs/fashion-mnist/report --readme README.md
