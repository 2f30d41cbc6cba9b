# The two commands of the README: `make demo` and `make test`. Both install what is missing first.
# `make test` runs `make lint` and the suite on the pom's Apache Kafka (4.x), the suite even when
# lint fails, and fails if either does; `make test-kafka-3.9` runs the 3.9 lane: the tests most
# sensitive to the broker's protocol versions, on Apache Kafka 3.9.
# `make lint`: the formatter's check, the linter, the type checker and the layer contracts, each
# run even when one before it failed (configured in pyproject.toml).
VENV := .venv
KAFKA_3_9 := 3.9.2
KAFKA_3_9_LANE := tests/integration/test_apache_kafka.py tests/integration/test_kafka_versions.py \
	tests/integration/test_dead_letters.py tests/integration/test_intake.py \
	tests/integration/test_pipeline.py

# Says, as $(1), why pytest failed, from its exit code in $$tests (5: it collected no tests).
pytest_failed = if [ $$tests -eq 5 ]; then echo "$(1): pytest collected no tests" >&2; \
	elif [ $$tests -ne 0 ]; then echo "$(1): pytest failed ($$tests)" >&2; fi

.PHONY: demo lint test test-fast test-kafka-3.9 setup
demo: $(VENV)/.installed
	$(VENV)/bin/portflow demo

lint: $(VENV)/.installed
	@failed=""; \
	echo "lint: ruff format --check"; $(VENV)/bin/ruff format --check . || failed="$$failed ruff-format"; \
	echo "lint: ruff check"; $(VENV)/bin/ruff check . || failed="$$failed ruff-check"; \
	echo "lint: mypy"; $(VENV)/bin/mypy || failed="$$failed mypy"; \
	echo "lint: lint-imports"; $(VENV)/bin/lint-imports || failed="$$failed lint-imports"; \
	if [ -n "$$failed" ]; then echo "make lint: failed:$$failed" >&2; exit 1; fi; \
	echo "make lint: formatted, linted, typed and layered as configured"

# Each part that failed is named on the last lines (make itself exits 2 whatever failed).
test: $(VENV)/.installed
	@lint=0; $(MAKE) --no-print-directory lint || lint=1; \
	$(VENV)/bin/python -m pytest; tests=$$?; \
	if [ $$lint -ne 0 ]; then echo "make test: make lint failed (see its report above)" >&2; fi; \
	$(call pytest_failed,make test); \
	[ $$lint -eq 0 ] && [ $$tests -eq 0 ]

test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m "not slow"

test-kafka-3.9: $(VENV)/.installed
	@PORTFLOW_KAFKA_VERSION=$(KAFKA_3_9) PORTFLOW_TEST_BROKER=apache-kafka \
	$(VENV)/bin/python -m pytest $(KAFKA_3_9_LANE); tests=$$?; \
	$(call pytest_failed,make test-kafka-3.9); \
	[ $$tests -eq 0 ]

setup $(VENV)/.installed: pyproject.toml scripts/setup.sh scripts/fetch-kafka.sh deploy/kafka/pom.xml
	bash scripts/setup.sh
