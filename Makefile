# Two commands for a fresh machine: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
RAW ?= raw
CURATED ?= curated
CRON ?= 0 3 * * *
PORT ?= 4200
SIZES ?= 1000,10000,20000,100000
SHARED ?= ../shared
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)

.PHONY: run test eval train bench serve

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet "uv==0.13.9"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

run: .venv/.synced  ## run the pipeline on $(RAW) and publish a release in $(CURATED)
	.venv/bin/commentary run --raw "$(RAW)" --curated "$(CURATED)"

test: .venv/.synced  ## the whole test suite
	.venv/bin/pytest

eval: .venv/.synced  ## out-of-sample cleaning accuracy on $(SHARED)/benchmark and pool, beside the single extractors
	nice .venv/bin/python -m tools.evaluation --shared "$(SHARED)" $(EVAL_FLAGS)

train: .venv/.synced  ## rebuild the shipped line models from $(SHARED) (TRAIN_FLAGS=--check: compare with a rebuild; --permissive: MIT/Apache data only)
	nice .venv/bin/python -m tools.train --shared "$(SHARED)" $(TRAIN_FLAGS)

serve: .venv/.synced  ## start a local Prefect server on 127.0.0.1:$(PORT) and serve the scheduled deployment ($(CRON))
	.venv/bin/python -m flows.serve --raw "$(RAW)" --curated "$(CURATED)" --cron "$(CRON)" --port "$(PORT)"

bench: .venv/.synced  ## cleaning speed, then corpora of $(SIZES) real-sized pages, a WARC run and small pages (BENCH_FLAGS=--cleaning-only: speed only); figures go to docs/PERFORMANCE.md by hand
	.venv/bin/python -m tools.bench --sizes "$(SIZES)" --shared "$(SHARED)" $(BENCH_FLAGS)
