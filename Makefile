# The two commands: `make serve` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test test-slow lint install system-deps clean

$(STAMP): pyproject.toml native/build_native.py $(wildcard native/src/*.c native/src/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash tools/system-deps.sh

serve: $(STAMP)
	$(VENV)/bin/gitserver serve

test: system-deps $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gitserver storage smart_http native
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-slow: system-deps $(STAMP)
	$(VENV)/bin/pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gitserver storage smart_http native

clean:
	rm -rf build dist *.egg-info native/*.so

# `make bench [SIZE=default] [RUNS=3]`: gitserver vs git http-backend (benchmarks/README.md).
SIZE ?= default,large
RUNS ?= 3
.PHONY: bench
bench: $(STAMP)
	test -x /usr/sbin/lighttpd || command -v lighttpd || (apt-get update -qq && apt-get install -y -qq lighttpd)
	$(PY) -m benchmarks.bench_server --size $(SIZE) --runs $(RUNS)

# Builds the container image with podman and tests it end to end (tools/container/).
.PHONY: image-test
image-test:
	bash tools/container/image-test.sh

# Hardening (docs/security.md): `make fuzz` runs every atheris target for FUZZ_RUNS
# executions (FUZZ_TARGETS to pick some); crashes land in tests/fuzz/findings/.
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS ?= pktline upload_v0 upload_v2 receive_commands pack_scan delta_apply sha1dc revision rest_json
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install -q atheris
	set -e; for t in $(FUZZ_TARGETS); do echo "== $$t"; $(PY) -m tests.fuzz.run $$t -runs=$(FUZZ_RUNS); done

# Soak (docs/security.md): SOAK_CLIENTS clients mixing clone, fetch, push and API calls for
# SOAK_SECONDS against a real server; fails on any error or server RSS growth over 10%.
SOAK_CLIENTS ?= 50
SOAK_SECONDS ?= 180
.PHONY: soak
soak: $(STAMP)
	$(PY) -m benchmarks.soak --clients $(SOAK_CLIENTS) --duration $(SOAK_SECONDS)

# SIGKILL crash consistency (docs/security.md): CRASH_TRIALS seeded trials (CRASH_SEED).
CRASH_TRIALS ?= 100
CRASH_SEED ?= 1
.PHONY: crash-test
crash-test: $(STAMP)
	CRASH_TRIALS=$(CRASH_TRIALS) CRASH_SEED=$(CRASH_SEED) $(VENV)/bin/pytest -q -s -p no:cacheprovider -m slow tests/hardening/test_crash.py
