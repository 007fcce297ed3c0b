# Two commands for a fresh clone: `make run` and `make test`. Each builds .venv itself.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit e2e package clean browser bench solana-programs issue-key test-moto test-localstack localstack

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip<26.3"  # chalice 1.34 requires pip<26.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

## Local Solana cluster started beside the emulator (localnet/README.md); RPC on SOLANA_RPC_PORT (8899).
## Without the program binaries it says so and `make run` goes on with the modelled market;
## with SOLANA_RPC_URL set (devnet, mainnet, a cluster of your own) none is started.
LOCALNET_CMD := $(PY) -m localnet --wallet .localnet/wallet.json --registry-out .localnet/registry.json
LOCALNET_SIDECAR := $(if $(SOLANA_RPC_URL),,--optional-sidecar "$(LOCALNET_CMD)")

## Set up and run the engine on this machine (REST :8000, WebSocket :8001, emulator :4566, Solana RPC :8899).
## EMULATOR=localstack|moto|auto: which emulator to start when none answers; auto (the default) is
## LocalStack where Java and npm are, else moto (docs/decisions/008).
EMULATOR ?= auto
run: $(STAMP)
	@[ -n "$$API_KEYS" ] || echo "API key: dev-key (client dev, admin). Send it as x-api-key (REST) or ?apiKey= (WebSocket); API_KEYS=name:key[:admin],... sets others."
	EMULATOR=$(EMULATOR) $(PY) -m offline --app-dir . --stage dev $(LOCALNET_SIDECAR)

## Fetch the venue programs from a mainnet RPC (getAccountInfo of each ProgramData account) into SOLANA_PROGRAMS_DIR.
SOLANA_PROGRAMS_DIR ?= .localnet/programs
SOLANA_MAINNET_RPC_URL ?= https://api.mainnet-beta.solana.com
solana-programs: $(STAMP)
	$(PY) -m localnet.dump --rpc-url $(SOLANA_MAINNET_RPC_URL) --out $(SOLANA_PROGRAMS_DIR)

## Set up and run everything CI runs: ruff, mypy, unit, integration and e2e tests, the whole
## suite on moto and, at the same time, the tests that touch AWS on LocalStack.
## What runs where (two pytest processes side by side, one per core):
##   test-moto        every test (unit, infra, offline runtime, localnet, bench, e2e, integration,
##                    fidelity), each e2e/integration/fidelity module on a moto server of its own;
##   test-localstack  LOCALSTACK_TESTS below with TEST_EMULATOR=localstack: each module starts a
##                    LocalStack of its own (host mode). Modules that pin moto (the local-cluster
##                    chain tests, the stream-order test, the issue-key test: tests/emulators.py
##                    PINS_MOTO) skip there, as they would only run on moto a second time.
test: $(STAMP) browser lint typecheck localstack
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-moto test-localstack

## The moto half in TEST_WORKERS processes, a test file each at a time (its module fixtures stay
## one runtime and one emulator): most of a test waits on sockets and clocks, not on a core.
TEST_WORKERS ?= 2
test-moto: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

## The e2e, integration and emulator-difference tests on LocalStack (TEST_EMULATOR, tests/emulators.py).
LOCALSTACK_TESTS ?= tests/e2e tests/integration tests/fidelity tests/offline/test_localstack.py
test-localstack: $(STAMP) localstack
	TEST_EMULATOR=localstack $(PY) -m pytest -q -p no:cacheprovider $(LOCALSTACK_TESTS)

## LocalStack 4.13.1 + DynamoDB Local, installed once into ~/.cache/offline-localstack (needs Java 17+ and npm:
## installed with apt-get when missing and run as root, as CI is).
localstack: $(STAMP)
	@command -v java >/dev/null && command -v javac >/dev/null && command -v npm >/dev/null || \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless npm >/dev/null || true; \
	  else echo "make localstack: Java 17+ (java, javac, jar) and npm are missing and this is not root, so they are not installed here." \
	    "Install them (Debian/Ubuntu: sudo apt-get install default-jdk-headless npm), or use EMULATOR=moto / make test-moto." >&2; fi
	$(PY) -m offline.localstack install

## Headless Chromium for the console's browser test (Debian's package; needs root, else that test skips).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "no chromium: tests/e2e/test_console.py will skip"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## Package for AWS into $(PACKAGE_DIR)/: sam.json (CloudFormation/SAM) + deployment.zip. STAGE=dev|prod.
## Needs no AWS credentials: Chalice only wants a region, so one is set if none is.
STAGE       ?= dev
PACKAGE_DIR ?= build
package: $(STAMP)
	rm -f $(PACKAGE_DIR)/sam.json $(PACKAGE_DIR)/deployment.zip
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$${AWS_REGION:-us-east-1}} \
	  $(VENV)/bin/chalice package --stage $(STAGE) --pkg-format cloudformation \
	  --merge-template infra/resources.json $(PACKAGE_DIR)/
	@echo "packaged stage $(STAGE): $(PACKAGE_DIR)/sam.json $(PACKAGE_DIR)/deployment.zip (deploy: docs/deploy.md)"

## Issue an API key to a client (docs/threat-model.md): NAME=alice [ADMIN=1] [USAGE_PLAN_ID=...]; CLIENTS_TABLE names the table.
issue-key: $(STAMP)
	$(PY) scripts/issue_key.py --name "$(NAME)" $(if $(ADMIN),--admin) $(if $(USAGE_PLAN_ID),--usage-plan-id $(USAGE_PLAN_ID))

## Benchmarks (docs/benchmarks.md): SCENARIO=reference|zero|burst|all; BENCH_ARGS=--localnet runs on the local cluster
SCENARIO ?= reference
bench: $(STAMP)
	$(PY) -m bench $(SCENARIO) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
