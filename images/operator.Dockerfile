# syntax=docker/dockerfile:1.7
# The sailvl operator: kopf running sailvl_operator.main. Slim Python, no torch.
# Build from the repository root: docker build -f images/operator.Dockerfile -t sailvl/operator .
# BASE: any Debian bookworm with Python 3.11 and python3-venv; the test cluster passes its
# locally made base (tests/cluster/controlplane/build-images.sh), no registry needed.
ARG BASE=python:3.11.11-slim-bookworm

# --- build: the dependencies, in a stage the package layer builds on ------------------
# As in job-cpu.Dockerfile: the runtime stage starts FROM this one, so a change under
# sailvl/ or operator/ adds one small layer (the package) on top of the dependency layer,
# which is keyed by pyproject.toml only.
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# 65532 is the conventional "nonroot" uid; the chart's runAsUser matches it. The uid
# needs a passwd entry: kopf names its peering identity after getpass.getuser(), which
# raises KeyError for an unknown uid and the operator exits at start.
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin nonroot \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY images/cpu-requirements.py /src/images/
COPY pyproject.toml ./
# pip's own resolution of the dependencies of "./[operator]" (cpu-requirements.py: the
# project's dependencies plus the extra, pinned; nothing of them is GPU-only), installed
# without the project itself.
RUN python images/cpu-requirements.py --pyproject pyproject.toml --extra operator >/tmp/req.txt \
 && pip install --no-deps -r /tmp/req.txt \
 && rm -rf /src/* /tmp/req.txt

# --- runtime: the package on top of the dependency layer, as a non-root user ----------
FROM build
LABEL org.opencontainers.image.title="sailvl-operator" \
      org.opencontainers.image.description="kopf operator for the SAIL-VL training recipe" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY pyproject.toml README.md /src/
COPY sailvl/ /src/sailvl/
COPY operator/ /src/operator/
RUN pip install --no-deps /src && rm -rf /src
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The root filesystem is mounted read-only by the chart, so nothing is written outside /tmp.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT ["kopf"]
CMD ["run", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "-m", "sailvl_operator.main"]
