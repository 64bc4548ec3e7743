# Two entry points for a fresh machine (see README.md):
#   make demo   -- installs the pinned virtualenv, runs the embedded default demo
#   make test   -- installs the pinned virtualenv, runs the test suite
#   make lint   -- ruff check + ruff format --check (ruff.toml); CI runs it before the tests
#   make format -- applies ruff format
#   make notebook -- executes notebooks/sampling.ipynb with small settings; CI runs it after the tests
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Re-install whenever the pins change.
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt setup.py | cksum | cut -d' ' -f1)

# Tests and demo run on the CPU unless told otherwise; the persistent XLA
# compilation cache makes a second run skip most compiles.
export JAX_PLATFORMS ?= cpu
export LUMIERE_JAX_CACHE ?= $(CURDIR)/.jax_cache

.PHONY: venv test demo lint format notebook clean

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

test: venv
	$(PY) -m pytest -q -n 2 --dist loadscope --durations=25 tests

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format .

demo: venv
	$(PY) -m lumiere_jax.demo

# The Colab notebook, executed top to bottom with small settings (CI runs it after the tests).
notebook: venv
	$(PY) tools/run_notebook.py notebooks/sampling.ipynb --set INSTALL=False --set NUM_STEPS=2 --timeout 900

clean:
	rm -rf $(VENV) .jax_cache .pytest_cache
