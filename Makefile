# The two commands of the README: `make demo` and `make test`. Both install what is missing first.
VENV := .venv

.PHONY: demo test test-fast setup
demo: $(VENV)/.installed
	$(VENV)/bin/portflow demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest

test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m "not slow"

setup $(VENV)/.installed: pyproject.toml scripts/setup.sh scripts/fetch-kafka.sh deploy/kafka/pom.xml
	bash scripts/setup.sh
