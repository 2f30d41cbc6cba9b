# The two commands of the README: `make demo` and `make test`. Both install what is missing first.
# `make test` runs the suite on the pom's Apache Kafka (4.x); `make test-kafka-3.9` runs the 3.9
# lane: the tests most sensitive to the broker's protocol versions, on Apache Kafka 3.9.
VENV := .venv
KAFKA_3_9 := 3.9.2
KAFKA_3_9_LANE := tests/integration/test_apache_kafka.py tests/integration/test_kafka_versions.py \
	tests/integration/test_dead_letters.py tests/integration/test_intake.py \
	tests/integration/test_pipeline.py

.PHONY: demo test test-fast test-kafka-3.9 setup
demo: $(VENV)/.installed
	$(VENV)/bin/portflow demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest

test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m "not slow"

test-kafka-3.9: $(VENV)/.installed
	PORTFLOW_KAFKA_VERSION=$(KAFKA_3_9) PORTFLOW_TEST_BROKER=apache-kafka $(VENV)/bin/python -m pytest $(KAFKA_3_9_LANE)

setup $(VENV)/.installed: pyproject.toml scripts/setup.sh scripts/fetch-kafka.sh deploy/kafka/pom.xml
	bash scripts/setup.sh
