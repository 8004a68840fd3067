# Everything a new machine needs: `make run` serves the API, `make test` runs every test.
# Every install comes from uv.lock (exact versions, hashes checked), made by the uv pinned in tools/uv.txt,
# which is itself installed with `pip --require-hashes` into .tools/uv. Nothing else is needed beforehand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_HOME := .tools/uv
UV := $(UV_HOME)/bin/uv
# The interpreter uv builds .venv with: the machine's own (uv never downloads one here).
PYTHON_EXE = $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# --locked: refuse to install when uv.lock no longer matches pyproject.toml (instead of re-resolving).
SYNC = $(UV) sync --locked --python "$(PYTHON_EXE)"

.PHONY: run demo test lint install install-run lock lock-upgrade lock-check k8s-tools k8s-tools-lock npm-tools npm-tools-lock export-schema bench load clean

$(UV): tools/uv.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	rm -rf $(UV_HOME)
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r tools/uv.txt
	touch $(UV)

# What `make run` needs: the service and the embedded database, no test tools. --inexact leaves the test
# tools of an earlier `make test` in place rather than removing and reinstalling them each time.
install-run: lock-check
	$(SYNC) --extra embedded --no-dev --inexact

# What `make test` needs: the above, the tracing extra (tests/api/test_tracing.py) and the test and lint
# tools (the `dev` group), nothing else.
install: lock-check
	$(SYNC) --extra embedded --extra otel

lock-check: $(UV)
	@$(UV) lock --check --offline --python "$(PYTHON_EXE)" || { \
		echo "uv.lock does not match pyproject.toml: run 'make lock' and commit both files" >&2; exit 1; }

# After editing the dependencies in pyproject.toml: re-resolve what changed, keep every other pin.
lock: $(UV)
	$(UV) lock --python "$(PYTHON_EXE)"

# Renew every pin to the newest release pyproject.toml allows (then run `make test` and read the changes).
lock-upgrade: $(UV)
	$(UV) lock --upgrade --python "$(PYTHON_EXE)"

run: install-run
	$(BIN)/python -m app serve

# The service with a fake GitHub and a fake GitLab on loopback, a seeded world and its cheat sheet
# (README, "Try it without GitHub accounts"). Same set-up as `make run`.
demo: install-run
	$(BIN)/python -m demo

test: install lint k8s-tools npm-tools
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check app tests bench demo
	$(BIN)/mypy --strict app

# The tools that check deploy/kubernetes (kubectl for kustomize, kubernetes-validate, checkov), in a
# virtualenv of their own so that checkov's hundred dependencies never enter uv.lock or the image; every
# one pinned with its hashes in tools/k8s-tools.txt. Rebuilt whenever that file changes.
K8S_TOOLS := .tools/k8s
k8s-tools: $(K8S_TOOLS)/installed

$(K8S_TOOLS)/installed: tools/k8s-tools.txt $(UV)
	rm -rf $(K8S_TOOLS)
	$(UV) venv --quiet --python "$(PYTHON_EXE)" $(K8S_TOOLS)
	$(UV) pip install --quiet --python $(K8S_TOOLS)/bin/python --require-hashes --no-deps -r tools/k8s-tools.txt
	touch $@

# After changing a version in tools/k8s-tools.in: pin it and its dependencies (all platforms, Python 3.11+).
k8s-tools-lock: $(UV)
	$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make k8s-tools-lock" --output-file tools/k8s-tools.txt tools/k8s-tools.in

# The npm tools the API tests run against the service (tests/api/test_graphql_over_http.py: the
# GraphQL-over-HTTP spec's server audit, graphql-http; tests/api/test_schema_descriptions.py:
# graphql-schema-linter's description rules), from the npm registry with exactly the versions and integrity hashes of
# tools/npm/package-lock.json (`npm ci`, no install scripts), into .tools/npm. Rebuilt when either file changes.
NPM_TOOLS := .tools/npm
npm-tools: $(NPM_TOOLS)/installed

$(NPM_TOOLS)/installed: tools/npm/package.json tools/npm/package-lock.json
	rm -rf $(NPM_TOOLS)
	mkdir -p $(NPM_TOOLS)
	cp tools/npm/package.json tools/npm/package-lock.json $(NPM_TOOLS)/
	cd $(NPM_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# After changing a version in tools/npm/package.json: pin it and its dependencies in package-lock.json.
npm-tools-lock:
	cd tools/npm && npm install --package-lock-only --ignore-scripts --no-audit --no-fund

# The repository picker benchmark (docs/performance.md); installs the serial clients it compares with.
bench: lock-check
	$(SYNC) --extra embedded --group bench
	$(BIN)/python -m bench.picker

# The load run of docs/reliability.md: 200 clients for 60 s against `serve --workers 2` (loopback only).
load: install
	$(BIN)/python -m bench.load

export-schema: install-run
	$(BIN)/python -m app export-schema > schema.graphql

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
