# xpgrad: one-command setup, demo, tests and benchmarks.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup demo data test test-thorough bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e ".[test,bench]"
	touch $(STAMP)

setup: $(STAMP)

# Fashion-MNIST from Debian's package when this machine can install it (otherwise the loader downloads it), and
# Graphviz for ag.draw_graph.
data:
	@if [ ! -d $(FMNIST) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } || \
		echo "note: dataset-fashion-mnist not installed; the loader will download Fashion-MNIST"; fi
	@if ! command -v dot >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q graphviz >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null 2>&1; } || \
		echo "note: graphviz not installed; ag.draw_graph can write .dot text only"; fi

# The main job: the textbook CNN, one epoch of Fashion-MNIST on the NumPy backend.
demo: $(STAMP) data
	$(VENV)/bin/xpgrad train --model cnn --dataset fashion-mnist --epochs 1 --out runs/demo

test: $(STAMP)
	$(VPY) -m pytest

test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(VPY) -m pytest

bench: $(STAMP)
	$(VENV)/bin/xpgrad bench

# On a GPU machine with CuPy, PyTorch (CUDA), pytest and hypothesis preinstalled, offline: tests on CuPy, benchmarks
# against PyTorch CUDA, one CNN epoch; writes gpu-report.md and gpu-results.json to $(OUT). Uses $(PY), not the venv,
# and runs from this source tree without installing it.
OUT ?= gpu-check-out
gpu-check:
	$(PY) -m xpgrad gpu-check --out $(OUT) $(if $(DATA),--data $(DATA))

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache build dist *.egg-info
