# aesop: `make demo` runs the whole method on bundled photos; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the releases this project is tested with (a CUDA build that also runs on CPU)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test lint format clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	$(PY) scripts/demo.py

test: venv lint
	$(PY) -m pytest -q -n auto

lint: venv
	$(VENV)/bin/ruff check aesop scripts tests
	$(VENV)/bin/ruff format --check aesop scripts tests

format: venv
	$(VENV)/bin/ruff format aesop scripts tests
	$(VENV)/bin/ruff check --fix aesop scripts tests

clean:
	rm -rf experiments/demo_* results/demo_* tb_logger/demo_* datasets/demo
