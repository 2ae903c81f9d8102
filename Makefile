# samkit: the one entry point for people, hooks and CI. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true

.PHONY: setup
setup: $(BIN)/python browser ## Build .venv and install everything (requirements + samkit in editable mode, the browser)
	set -o pipefail; $(BIN)/pip install -q -r requirements.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	set -o pipefail; $(BIN)/pip install -q --no-deps -e . 2>&1 | { grep -v "^WARNING: Location" || true; }

.PHONY: browser
browser: ## Install what the browser test needs when /usr/bin/chromium is missing (Debian's chromium + fonts, apt-get)
	bash tools/install_browser.sh

# Set up again whenever what the venv is built from changes.
$(BIN)/samkit: requirements.txt pyproject.toml
	$(MAKE) setup
	touch $@

.PHONY: lint
lint: $(BIN)/samkit ## Ruff (format check + lint) and mypy on the package
	$(BIN)/ruff format --check samkit tests tools
	$(BIN)/ruff check samkit tests tools notebooks
	$(BIN)/mypy

.PHONY: format
format: $(BIN)/samkit ## Reformat and auto-fix with ruff
	$(BIN)/ruff format samkit tests tools
	$(BIN)/ruff check --fix samkit tests tools

# offline, on the CPU, with the bundled model (and SAM 2.1 / SAM 3 at small random configurations)
PYTEST := SAMKIT_MODEL=shapes SAMKIT_HF_WEIGHTS=small $(BIN)/pytest
# make test's workers (pytest-xdist): the tests of a file with module fixtures stay together,
# the others go to whichever worker is free, the longest first (tests/conftest.py). One
# more worker than this project's 2 cores: notebook kernels starting, subprocesses, pip and
# the browser leave a core idle part of the time, and the third worker fills it.
TEST_WORKERS ?= 3

.PHONY: test
test: $(BIN)/samkit browser lint ## Lint, then every test (notebooks, browser, training) and the docstring examples
	$(PYTEST) -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --doctest-modules tests samkit --durations=25

.PHONY: test-fast
test-fast: $(BIN)/samkit ## The unit tests and docstring examples, without the slow ones (notebooks, browser, training, Ray, OpenVINO conversions, whole generator runs): under a minute
	$(PYTEST) -m "not slow" --doctest-modules tests samkit

.PHONY: weights
weights: $(BIN)/samkit ## Download and verify an official checkpoint: make weights MODEL=vit_b (or vit_l, vit_h)
	$(BIN)/samkit download $(or $(MODEL),vit_b)

.PHONY: shapes-model
shapes-model: $(BIN)/samkit ## Retrain the bundled offline model into data/models/ (deterministic, one run, 55-60 min on 2 CPU cores)
	$(BIN)/python -m tools.train_shapes_model

.PHONY: eval-shapes
eval-shapes: $(BIN)/samkit ## Evaluate the bundled model on 100 held-out scenes through the stock predictor and generator
	$(BIN)/python -m tools.eval_shapes_model --scenes 100

.PHONY: demo
demo: $(BIN)/samkit ## Run every notebook headless into build/demo (notebooks + PNG figures); MODEL=vit_b|vit_l|vit_h for real weights
	$(BIN)/python -m tools.run_notebooks demo --model $(or $(MODEL),shapes) --out build/demo

.PHONY: nbval-outputs
nbval-outputs: $(BIN)/samkit ## Rewrite tests/notebook_outputs.json, the outputs nbval checks (after the shapes model or a notebook changes)
	$(BIN)/python -m tools.run_notebooks expected

# Colab's metadata that nbstripout does not strip by itself.
NBSTRIPOUT_KEYS := metadata.widgets metadata.colab.provenance cell.metadata.id cell.metadata.colab cell.metadata.outputId cell.metadata.executionInfo

.PHONY: strip
strip: $(BIN)/samkit ## Strip outputs and Colab metadata from the notebooks; install the git filter that keeps them stripped
	$(BIN)/nbstripout --extra-keys "$(NBSTRIPOUT_KEYS)" notebooks/*.ipynb
	$(BIN)/nbstripout --install
	git config filter.nbstripout.extrakeys "$(NBSTRIPOUT_KEYS)"

.PHONY: bench
bench: $(BIN)/samkit ## Speed, memory and fidelity against stock segment-anything (vit_b, shapes), the live widget, the fast path, samkit segment's engines, SAM 2.1 tiny, fine-tuning
	$(BIN)/python -m tools.bench
	$(BIN)/python -m tools.bench_segment
	$(BIN)/python -m tools.bench_sam2
	$(BIN)/python -m tools.bench_memory
	$(BIN)/python -m tools.bench_finetune
