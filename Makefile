# mailmoat: `make run` starts the gateway with embedded defaults; `make test`
# runs lint, type checks and the whole test suite. Both create the virtual
# environment in .venv first when it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz system-packages lint typecheck unit model bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mailmoat serve $(if $(CONFIG),--config $(CONFIG))

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The Debian packages the tests run for real (Postfix, rbldnsd, Redis, Chromium,
# ...): installed when we are root with apt, else the exact command is printed
# and make stops. SYSTEM_PACKAGES=skip runs without them (those tests skip).
system-packages:
	$(if $(filter skip,$(SYSTEM_PACKAGES)),@echo "system packages not checked (SYSTEM_PACKAGES=skip)",scripts/system-packages --install)

test: system-packages lint typecheck unit

# The fuzzers (tests/hardening/test_fuzz_*.py) with the large example budget
# (profile "fuzz" in tests/hardening/conftest.py); `make test` runs them with
# the fixed CI budget.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/hardening/test_fuzz_*.py $(PYTEST_ARGS)

model: $(STAMP)
	$(BIN)/python -m mailmoat.classify.build_default --corpus ../shared/corpus --out src/mailmoat/data/model.bin

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
