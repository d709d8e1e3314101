# orderhub — the commands a new user needs. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ORDERHUB_HOME ?= $(CURDIR)/var

.PHONY: install demo test lint bench bench-api serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install orderhub with its test tools

demo: $(STAMP)  ## sandbox up, one whole pipeline run, summary
	$(BIN)/orderhub demo

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  ## normalize + dedupe + load at scale (ORDERS=1000000 by default)
	$(BIN)/orderhub bench pipeline --orders $${ORDERS:-1000000}

bench-api: $(STAMP)  ## least wall time Amazon's rate limits allow: 15-min sync and 365-day backfill at 5,000 orders/day
	$(BIN)/orderhub bench api-time --channel amazon --orders-per-day $${PER_DAY:-5000} --json

serve: $(STAMP)  ## run the Prefect schedules locally with the Prefect UI
	$(BIN)/orderhub flows serve

clean:
	rm -rf var .pytest_cache
