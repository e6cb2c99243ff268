# stegshield — set-up and everyday tasks. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 100000000000

.PHONY: demo test lint bench train clean browser lock

# requirements.lock pins every dependency's version (regenerate with `make lock`).
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev,bench,train]'
	touch $(STAMP)

lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^stegshield' > requirements.lock

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests scripts
	$(PY) -m pytest

# The web page is tested in Debian's Chromium (driven by Playwright, never `playwright install`).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get install -y -q --no-install-recommends chromium >/dev/null; } || echo "chromium not installed: the browser test will be skipped"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts

bench: $(STAMP)
	$(PY) scripts/bench.py --out BENCHMARKS.md

train: $(STAMP)
	nice -n 5 $(PY) scripts/train.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis
