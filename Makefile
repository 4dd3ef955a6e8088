# inventory360 — one command to install, one to run the main job, one to test.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench bench-api bench-cdc bench-flink run-local services-up services-down clean

install: $(STAMP)  ## venv + package (editable) + dev tools + the native decoder (Rust, via maturin)

$(STAMP): pyproject.toml native/Cargo.toml native/pyproject.toml $(wildcard native/src/*.rs)
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q ./native
	sh scripts/ensure-chromium.sh
	touch $(STAMP)

demo: install  ## the main job: live generated traffic → engine → lake + API + dashboard (Ctrl-C stops)
	$(BIN)/inv360 demo

test: install  ## every tier: unit, e2e (real subprocesses, kill -9), integration (real services, started here)
	services/svc up
	bash services/flink/setup.sh && $(BIN)/python -m pytest; rc=$$?; services/svc down; exit $$rc

test-fast: install  ## unit tests only
	$(BIN)/python -m pytest -m unit -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: install  ## throughput benchmark (not a test): events per CPU-second at 1M keys
	$(BIN)/inv360 bench

bench-api: install  ## append→visible latency and point-lookup p99 / req/s
	$(BIN)/python bench/bench_api.py

bench-cdc: install  ## MariaDB commit → Debezium → Kafka → engine → Cassandra → API latency (services up)
	$(BIN)/python bench/bench_cdc_latency.py

run-local: install  ## the pipeline against the real services (services-up first)
	$(BIN)/inv360 run --config configs/local-services.yaml

bench-flink: install  ## embedded engine vs the PyFlink job on the same Kafka input (services up)
	bash services/flink/setup.sh
	$(BIN)/python bench/bench_flink.py

services-up:
	services/svc up

services-down:
	services/svc down

clean:
	rm -rf out .cache/bench
