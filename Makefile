# tempo-fast: the two commands are `make run` and `make test` (see README.md).
# Everything installs into ./.venv from the project's own files; nothing by hand.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Cargo's build output lives outside the clone so CI and fresh clones reuse it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/tempo-fast/target
ARGS   ?=

.PHONY: run test build venv lint bench clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==26.3
	touch $@

venv: $(VENV)/.created

## build: compile the Rust core (maturin, release) and the Cython kernels into the venv
build: venv
	$(PIP) install --quiet ./ext -e '.[test]'

## run: build everything and start the single binary on local disk (./data)
run: build
	$(VENV)/bin/tempo-fast $(ARGS)

## test: build everything, then cargo test and the pytest suite
test: build
	cargo test --workspace --exclude tempo_fast_py --quiet
	$(PY) -m pytest -q $(ARGS)

lint: venv
	$(VENV)/bin/ruff check tempo_fast tests bench
	$(VENV)/bin/ruff format --check tempo_fast tests bench
	cargo clippy --workspace --all-targets -- -D warnings

## bench: pytest-benchmark suites (never part of `make test`)
bench: build
	$(PY) -m pytest bench -q $(ARGS)

clean:
	rm -rf $(VENV) data ext/build ext/tempo_fast_kernels/*.c ext/tempo_fast_kernels/*.so
