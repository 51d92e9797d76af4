# Two commands: `make up` (installs what is missing, starts the stack) and `make test`.
SHELL := /bin/bash
VENV := .venv
LS_VENV := .venv-localstack
CHECKOV_VENV := .venv-checkov
SANDBOX := $(VENV)/bin/sandbox
# Before the first `make up` there is no CLI (no .venv), and so no stack either: a target that
# runs the CLI says so in one line and fails, instead of the shell's "No such file" (Error 127).
NEED_CLI = @test -x $(SANDBOX) || { echo "no stack here: $(1)" >&2; exit 1; }
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: up down status demo test lint install help dashboard browser docker bench
.DEFAULT_GOAL := help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# PROFILE=compose: the same stack in Docker containers (compose/README.md); the host then needs
# only the CLI's environment: PostgreSQL, PgBouncer and LocalStack are in the image.
PROFILE ?= native
ifeq ($(filter native compose,$(PROFILE)),)
$(error PROFILE must be native or compose)
endif

up: $(if $(filter compose,$(PROFILE)),$(VENV)/.installed docker,install)  ## Install what is missing, start the stack, print the endpoints (PROFILE=compose: in Docker)
	@$(SANDBOX) up $(if $(filter compose,$(PROFILE)),--runtime compose) $(UP_ARGS)

down:  ## Stop the stack (FORCE=1 to drop queued messages)
	$(call NEED_CLI,nothing to stop (\`make up\` starts one))
	@$(SANDBOX) down $(if $(FORCE),--force)

status:  ## Health, roles, replication, queue and DLQ depth
	$(call NEED_CLI,run \`make up\` first)
	@$(SANDBOX) status

demo: up  ## The guidance's demo at workshop length: a 5 s client, no retry, a 20 s crash failover; both paths accounted for
	@$(SANDBOX) demo $(DEMO_ARGS)

# Without STACK: the local stack's page (the stack must be up). STACK=NAME [REGION=...] [PORT=...]:
# a deployed stack's read-only page instead, served in the foreground until Ctrl-C.
dashboard: $(if $(STACK),$(VENV)/.installed)  ## Start the dashboard if needed, print its URL (STACK=NAME: a deployed stack's, read-only)
	$(call NEED_CLI,run \`make up\` first (it starts the dashboard too))
	@$(SANDBOX) dashboard $(if $(STACK),--target aws --stack $(STACK)) $(if $(REGION),--region $(REGION)) $(if $(PORT),--port $(PORT))

test: install browser docker  ## Run the test suite on a real stack of its own (and one in Docker)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install docker  ## Measure failover RTO, drain, API throughput, the consumer profiles, native against Compose (BENCH_ARGS=--quick)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

lint: install  ## ruff, and the layout's import rules (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

install: $(VENV)/.installed $(LS_VENV)/.installed $(CHECKOV_VENV)/.installed system-packages  ## Install what is missing

$(VENV)/.installed: pyproject.toml
	@echo "==> project environment ($(VENV))"
	@test -x $(VENV)/bin/python || $$(scripts/find-python 3.12) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --upgrade pip
	@$(VENV)/bin/pip install -q -e '.[dashboard,dev,aws]'
	@touch $@

$(LS_VENV)/.installed: requirements/localstack.txt
	@echo "==> LocalStack environment ($(LS_VENV), Python >= 3.13)"
	@test -x $(LS_VENV)/bin/python || $$(scripts/find-python 3.13) -m venv $(LS_VENV)
	@$(LS_VENV)/bin/pip install -q --upgrade pip
	@$(LS_VENV)/bin/pip install -q -r requirements/localstack.txt
	@touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	@echo "==> checkov environment ($(CHECKOV_VENV)): scans the AWS template in tests/aws"
	@test -x $(CHECKOV_VENV)/bin/python || $$(scripts/find-python 3.12) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	@$(CHECKOV_VENV)/bin/pip install -q -r requirements/checkov.txt
	@touch $@

system-packages:
	@scripts/install-system-packages $(if $(filter bench,$(MAKECMDGOALS)),--bench)

browser:  # Debian's chromium, for the dashboard's real-browser test
	@scripts/install-system-packages --browser

docker:  # a Docker engine that answers, Compose v2 and the Dockerfile's base image (Compose tests)
	@scripts/install-docker

# -- AWS: the CDK app in aws/ (see aws/README.md) ------------------------------------------
CDK := npx --yes aws-cdk@2
CDK_APP := $(VENV)/bin/python aws/app.py
CDK_ARGS ?=
.PHONY: synth deploy destroy

synth: $(VENV)/.installed  ## Synthesize the AWS app to cdk.out (no account, CLI or Docker)
	CDK_OUTDIR=cdk.out $(CDK_APP)

deploy: $(VENV)/.installed  ## Deploy to us-east-1: needs Node's npx, AWS credentials, a bootstrap
	$(CDK) deploy --app "$(CDK_APP)" --output cdk.out $(CDK_ARGS)

destroy: $(VENV)/.installed  ## Delete the deployed stack (CDK_ARGS=--force: no prompt)
	$(CDK) destroy --app "$(CDK_APP)" --output cdk.out $(CDK_ARGS)
