# oms-graphql: `make run` serves the API with the embedded default; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := plugins/taobao plugins/jd plugins/amazon plugins/pos plugins/notify_log plugins/notify_webhook plugins/easypost plugins/kuaidi100
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run demo test lint schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(BIN)/pip install --quiet -e . $(foreach p,$(wildcard $(PLUGINS)),-e $(p))
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/oms migrate
	OMS_ANONYMOUS_ROLE=$${OMS_ANONYMOUS_ROLE-ADMIN} $(BIN)/oms serve

demo: $(STAMP)
	$(BIN)/oms migrate
	OMS_ANONYMOUS_ROLE=$${OMS_ANONYMOUS_ROLE-ADMIN} $(BIN)/oms serve --demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check oms_graphql plugins tests bench
	$(BIN)/ruff format --check oms_graphql plugins tests bench
	$(BIN)/mypy oms_graphql
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

schema: $(STAMP)
	$(BIN)/python -c 'from oms_graphql.resolvers import schema; open("schema.graphql", "w").write(schema.as_str() + "\n")'

clean:
	rm -rf $(VENV) oms.db oms.db-wal oms.db-shm
