# Two entry points for a fresh machine (see README.md):
#   make demo   -- installs the pinned virtualenv, runs the embedded default demo
#   make test   -- installs the pinned virtualenv, runs the test suite
#   make lint   -- ruff check + ruff format --check (ruff.toml); CI runs it before the tests
#   make format -- applies ruff format
#   make test-app -- the web demo's extra (requirements-app.txt), Debian's chromium + chromedriver, tests/app
#   make app    -- serves the web demo on http://127.0.0.1:7860 with the shipped references
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

.PHONY: venv test test-app app-venv app demo lint format notebook clean

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

# The optional web demo (lumiere_jax/app.py): its pinned extra in the same virtualenv; the browser
# test needs Debian's chromium and chromium-driver (about 420 MB; apt, as root or through sudo).
APT := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)
app-venv: venv
	$(PY) -m pip install -q -r requirements-app.txt -c constraints.txt -c constraints-app.txt

test-app: app-venv
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || $(APT) install -y -q chromium chromium-driver
	$(PY) -m pytest -q -n 0 tests/app

app: app-venv
	$(PY) -m lumiere_jax.app --checkpoint=assets/moving_shapes_base --i2v_checkpoint=assets/moving_shapes_conditional

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
