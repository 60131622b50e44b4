# oms-graphql: `make run` serves the API with the embedded default; `make test` runs everything.
# `make run PORT=8001` (or HOST=0.0.0.0) serves elsewhere; OMS_DATABASE_URL picks the database.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := plugins/taobao plugins/jd plugins/amazon plugins/pos plugins/notify_log plugins/notify_webhook \
	plugins/pickup plugins/fleet plugins/sf plugins/easypost plugins/kuaidi100
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run demo reset test lint schema clean

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
	OMS_ANONYMOUS_ROLE=$${OMS_ANONYMOUS_ROLE-ADMIN} $(BIN)/oms serve --host $(HOST) --port $(PORT)

# Instead of `make run`, not beside it: with the port taken it stops before loading
# anything (the message says how to load the data into the running server's database).
demo: $(STAMP)
	$(BIN)/oms migrate
	OMS_ANONYMOUS_ROLE=$${OMS_ANONYMOUS_ROLE-ADMIN} $(BIN)/oms serve --demo --host $(HOST) --port $(PORT)

# Empty the database (orders, products, stock, tokens...) but keep the install; migrates first,
# so it also works on a database that does not exist yet.
reset: $(STAMP)
	$(BIN)/oms migrate
	$(BIN)/oms reset --yes

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
