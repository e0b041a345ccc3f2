# Everything the project needs is installed from here: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Lambda's runtime version (SAM_PYTHON, 3.12) with the runtime dependencies alone, for bench/cold_start.py.
LAMBDA_VENV  ?= .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed

.PHONY: install lock run migrate test lint bench clean check-deploy checkov publish-web \
	build-MessagesFunction build-EmbeddingsFunction build-TasksFunction build-MigrateFunction \
	build-StreamAuthorizerFunction

install: $(STAMP)

# Every package comes from requirements.lock, hash-checked, with no dependency resolution at install time
# (--no-deps: the lock is the whole set). llama-cpp-python is the exception that proves it: it is compiled
# portably into .wheelhouse/ by infra/wheelhouse.py (never from pip's cache, which ignores build flags),
# installed first, and then found already satisfied when the lock is installed.
$(STAMP): pyproject.toml requirements.lock infra/wheelhouse.py
	$(PYTHON) -m venv $(VENV)
	@echo ">> Installing the locked dependencies. On a new machine llama-cpp-python compiles from source:"
	@echo ">> about 5 minutes on 2 cores, once (kept in .wheelhouse/). The whole first install takes about 7 minutes."
	$(PY) -m pip install -q --no-deps "$$($(PY) infra/wheelhouse.py)"
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements.lock
	@# setuptools warns about editable installs on every build: keep its output unless the step fails
	@$(PY) -m pip install -q --no-deps -e . >$(VENV)/editable-install.log 2>&1 || { cat $(VENV)/editable-install.log; exit 1; }
	touch $(STAMP)

# Re-resolve the locks after changing dependencies in pyproject.toml (uv comes from the dev lock).
# requirements-lambda.lock: the runtime dependencies alone, for Lambda (Python 3.12, arm64), at the dev lock's versions.
UV_LOCK := UV_NO_CONFIG=1 $(VENV)/bin/uv pip compile -q --generate-hashes --custom-compile-command "make lock"
lock: install
	$(UV_LOCK) pyproject.toml --extra local --extra dev --universal --python-version 3.11 -o requirements.lock
	$(UV_LOCK) pyproject.toml --python-version 3.12 --python-platform aarch64-manylinux_2_28 \
		-c requirements.lock -o requirements-lambda.lock
	echo aws-sam-cli | $(UV_LOCK) - --python-version 3.12 -o requirements-sam.lock
	echo checkov | $(UV_LOCK) - --python-version 3.12 -o requirements-checkov.lock

run: install        ## local stack: embedded Postgres, migrations, moto SQS, gateway on 127.0.0.1:$${PORT:-3000}
	$(PY) -m infra.local.stack serve

migrate: install    ## apply migrations (DATABASE_URL, or the embedded Postgres under .data/)
	$(PY) -m infra.local.stack migrate

test: install
	$(PY) -m pytest -q

lint: install       ## ruff (lint and format check), mypy (pyproject.toml: strict for core), cfn-lint
	$(VENV)/bin/ruff check core functions infra tests $(wildcard bench)
	$(VENV)/bin/ruff format --check core functions infra tests $(wildcard bench)
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

# cold_start runs the handlers on Lambda's Python (the runtime dependencies alone, in LAMBDA_VENV).
bench: install $(LAMBDA_STAMP)
	@for f in bench/[!_]*.py; do echo ">> $$f" >&2; \
		case $$f in bench/cold_start.py) args=--python=$(LAMBDA_VENV)/bin/python;; *) args=;; esac; \
		$(PY) $$f $$args || exit 1; done

# `sam build` (BuildMethod: makefile) runs build-<LogicalId> with ARTIFACTS_DIR set; all five functions share
# one package (infra/package.py: runtime dependencies as arm64 wheels + core/, functions/, migrations).
build-MessagesFunction build-EmbeddingsFunction build-TasksFunction build-MigrateFunction \
build-StreamAuthorizerFunction:
	python3 -m infra.package "$(ARTIFACTS_DIR)"

# The SAM CLI lives in its own venv (Python 3.12, Lambda's runtime): it pins packages ours must not follow.
SAM_VENV   ?= .venv-sam
SAM_PYTHON ?= $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || echo /root/.pyenv/versions/3.12.1/bin/python)
SAM_ENV    := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline

$(SAM_VENV)/bin/sam: requirements-sam.lock
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --no-deps --require-hashes -r requirements-sam.lock

# snapshot-restore-py: SnapStart's hooks library, which Lambda's runtime has.
$(LAMBDA_STAMP): pyproject.toml requirements-lambda.lock
	$(SAM_PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install -q --no-deps --require-hashes -r requirements-lambda.lock
	$(LAMBDA_VENV)/bin/pip install -q --no-deps -e . "$$(grep -o '^snapshot-restore-py==[^ ]*' requirements.lock)"
	touch $(LAMBDA_STAMP)

# checkov (policy checks of the deployed resources) lives in its own venv too: its pins clash with the dev lock.
CHECKOV_VENV ?= .venv-checkov

$(CHECKOV_VENV)/bin/checkov: requirements-checkov.lock
	$(SAM_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --no-deps --require-hashes -r requirements-checkov.lock

# checkov runs on the template as CloudFormation gets it (the SAM transform, offline, by SAM's own translator in
# SAM_VENV: the generated roles, permissions, alias, API and stage are checked too). Every accepted finding is an
# inline skip (a `checkov: skip:` entry in the resource's Metadata, which SAM carries to the generated resource),
# justified in docs/deploy.md ("checkov"): any other failed check fails the target.
checkov: $(SAM_VENV)/bin/sam $(CHECKOV_VENV)/bin/checkov   ## checkov on the SAM-transformed template (offline)
	@mkdir -p .aws-sam
	$(SAM_ENV) $(SAM_VENV)/bin/python infra/sam_transform.py template.yaml >.aws-sam/transformed.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		--file .aws-sam/transformed.json

check-deploy: lint $(SAM_VENV)/bin/sam checkov   ## cfn-lint, sam validate --lint, checkov (offline), sam build (~2 min; SAM_BUILD=0 skips it)
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	@if [ "$(SAM_BUILD)" != "0" ]; then \
		$(SAM_ENV) $(SAM_VENV)/bin/sam build --build-in-source --template template.yaml --build-dir .aws-sam/build; fi

# The chat page, deployed (docs/deploy.md, "The chat page"): web/ to the stack's bucket (WebBucketName output), plus
# web/config.json made from the ApiUrl and StreamUrl outputs (the page reads it; locally there is none, and the page
# calls its own origin), then a CloudFront invalidation. Needs the AWS CLI, credentials and a deployed stack:
#   make publish-web STACK=agents [AWS_REGION=eu-west-1]
# Every file is sent with Cache-Control: no-cache (browsers revalidate), so a new page or API URL reaches them at once.
STACK ?=
PUBLISH_DIR := .aws-sam/web-publish
STACK_OUTPUT = aws cloudformation describe-stacks --stack-name "$(STACK)" \
	--query "Stacks[0].Outputs[?OutputKey=='$(1)'].OutputValue" --output text
publish-web:
	@test -n "$(STACK)" || { echo "error: make publish-web STACK=<the stack's name>" >&2; exit 1; }
	@rm -rf $(PUBLISH_DIR) && mkdir -p $(PUBLISH_DIR)
	api="$$($(call STACK_OUTPUT,ApiUrl))" stream="$$($(call STACK_OUTPUT,StreamUrl))" && \
		printf '{"apiUrl": "%s", "streamUrl": "%s"}\n' "$${api%/}" "$$stream" >$(PUBLISH_DIR)/config.json
	bucket="$$($(call STACK_OUTPUT,WebBucketName))" && \
		aws s3 sync web/ "s3://$$bucket/web/" --delete --exclude config.json --cache-control no-cache && \
		aws s3 cp $(PUBLISH_DIR)/config.json "s3://$$bucket/web/config.json" --cache-control no-cache \
			--content-type application/json && \
		aws s3 cp web/index.html "s3://$$bucket/index.html" --cache-control no-cache --content-type text/html
	aws cloudfront create-invalidation --distribution-id "$$($(call STACK_OUTPUT,WebDistributionId))" --paths '/*'
	@echo "the page: $$($(call STACK_OUTPUT,WebUrl)) (it must be in the stack's CorsAllowedOrigins)"

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(LAMBDA_VENV) .data .aws-sam .wheelhouse
