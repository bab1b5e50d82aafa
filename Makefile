# aesop: `make demo` runs the whole method on bundled photos; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the releases this project is tested with (a CUDA build that also runs on CPU)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo figures test lint format clean gpu-wheels gpu-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	$(PY) scripts/demo.py

# docs/*.png from the demo's outputs (after `make demo`): the commands of docs/evaluation.md, written to docs/
figures: venv
	$(PY) scripts/docs_figures.py --out docs

test: venv lint
	$(PY) -m pytest -q -n auto --dist loadgroup

lint: venv
	$(VENV)/bin/ruff check aesop scripts tests
	$(VENV)/bin/ruff format --check aesop scripts tests

format: venv
	$(VENV)/bin/ruff format aesop scripts tests
	$(VENV)/bin/ruff check --fix aesop scripts tests

clean:
	rm -rf experiments/demo_* results/demo_* tb_logger/demo_* datasets/demo figures

# The wheels a GPU machine's Python 3.12 x86-64 lacks, in .whl/ (docs/gpu.md): basicsr 1.4.2 (source only on
# the registries: built here) and what aesop imports beyond the packages a CUDA PyTorch image has (torch,
# torchvision, numpy, scipy, opencv, scikit-image, pyyaml, tqdm, requests, pytest), at the versions of .venv.
GPU_WHEELS := lpips DISTS-pytorch spandrel pydantic pydantic-core annotated-types typing-inspection \
	typing-extensions lmdb addict future yapf platformdirs
GPU_PLATFORMS := --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64

gpu-wheels: venv
	rm -rf .whl && mkdir -p .whl
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w .whl basicsr==1.4.2
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: $(GPU_PLATFORMS) -d .whl \
		$$($(PY) -c 'import importlib.metadata as m, sys; print(*(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' $(GPU_WHEELS))
	@ls .whl && du -sh .whl

# The GPU check (docs/gpu.md): `pytest -m cuda` (with an NCCL run and its resume), the benchmark. Report in
# GPU_CHECK_OUT (default: $$OUT if set, else gpu_check_report/); no venv needed: .venv/bin/python if there, else
# the machine's python3, with the wheels of .whl/.
GPU_CHECK_OUT ?=
gpu-check:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/gpu_check.py $(GPU_CHECK_OUT)
