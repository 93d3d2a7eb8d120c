# xpgrad: one-command setup, tests and benchmarks.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-thorough bench clean

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(VPY) -m pytest

test-thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(VPY) -m pytest

bench: $(STAMP)
	$(VPY) -m pip install -q -e ".[bench]"
	$(VPY) -m benchmarks

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache build *.egg-info
