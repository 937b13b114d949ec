# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit lint up down status setup clean

$(STAMP): pyproject.toml constraints.txt
	bash deploy/local/bootstrap.sh
	@touch $(STAMP)

setup: $(STAMP)
	bash deploy/local/kafka.sh fetch
	bash deploy/local/kafka.sh fetch-tools
	bash deploy/local/postgres.sh install
	bash deploy/local/prometheus.sh install
	bash deploy/local/contract-tools.sh install
	bash deploy/local/browser.sh install

## Installs everything, runs the whole pipeline on the bundled sample, prints the ledger summary.
demo: setup
	$(BIN)/carbonledger demo

## Installs what the tests need and runs the whole suite against the real broker and database.
test: setup lint
	$(BIN)/python -m pytest -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## The floors (import-linter contracts in pyproject.toml), style, and strict types everywhere.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy carbonledger tests examples sdk/python/src sdk/python/tests

up: setup
	$(BIN)/carbonledger up

down:
	$(BIN)/carbonledger down

status:
	$(BIN)/carbonledger status

clean:
	-$(BIN)/carbonledger down
	rm -rf .run
