# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both build the virtual environment first; torch is pinned because an unpinned install
# pulls a multi-GB CUDA build on a machine without torch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= build/demo

.PHONY: demo test env clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: env
	$(BIN)/genre demo --out $(DEMO)

test: env
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build
