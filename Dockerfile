# syntax=docker/dockerfile:1
# canary-engine controller image.
#   docker build -t ghcr.io/canary-engine/canary-engine:0.1.0 .
# Stage 1 builds wheels of the project and of every dependency; stage 2 installs them into a
# virtualenv on a clean slim image (no compilers, no build tools, no pip cache) and runs as an
# unprivileged user. config/deploy/deployment.yaml runs it with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# What the wheel is built from: pyproject.toml (its readme is README.md) and the packages it lists.
COPY pyproject.toml README.md ./
COPY config ./config
COPY analysis ./analysis
COPY traffic ./traffic
COPY engine ./engine
# The project's own wheel, then wheels of its dependencies (resolved from the wheel's metadata).
RUN pip wheel --no-deps -w /wheels . \
 && pip wheel -w /wheels /wheels/canary_engine-*.whl

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# wget: the seed runbook checks Prometheus from the controller pod
# (kubectl exec -n flux-system deploy/flagger -- wget -O- http://prometheus.system:9090/...).
# curl: Flagger's documented acceptance tests (`curl -sd 'test' .../token | grep token`), which the
# load tester runs only when started with --allow-commands.
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home \
      --shell /usr/sbin/nologin nonroot \
 && python -m venv /opt/venv
# Install from the builder's wheels only (no index); the wheels are bind-mounted, not copied,
# so they add nothing to the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels canary-engine \
 && canary-engine --version
LABEL org.opencontainers.image.title="canary-engine" \
      org.opencontainers.image.description="Drop-in replacement for the Flagger controller" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /home/nonroot
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["canary-engine"]
CMD ["run"]
