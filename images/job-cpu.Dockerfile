# syntax=docker/dockerfile:1.7
# CPU job image: caption (transformers backend), train (DeepSpeed on CPU over gloo) and
# eval in one image, for CPU nodes and the test cluster's real worker node. The entrypoint
# and user are the same as the CUDA and Ascend images'; only the torch install differs.
# Build from the repository root: docker build -f images/job-cpu.Dockerfile .
# BASE: any Debian bookworm with Python 3.11 and python3-venv; the test cluster passes
# its locally made base (tests/cluster/controlplane/build-images.sh), no registry needed.
ARG BASE=python:3.11.11-slim-bookworm

# --- build: the dependencies, in a stage the package layer builds on ------------------
# The runtime stage starts FROM this one (no `COPY --from` of the venv): a change under
# sailvl/ adds one small layer to the image instead of rewriting the 5 GB venv, so a
# rebuild costs seconds and a few MB of disk, and the nodes pull only that layer.
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 DS_BUILD_OPS=0 DS_ACCELERATOR=cpu
# Some bases already define uid 1000 (e.g. a default user); reuse it rather than fail.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --create-home --home-dir /home/sailvl --shell /usr/sbin/nologin sailvl) \
 && mkdir -p /home/sailvl && chown 1000:1000 /home/sailvl \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY images/cpu-requirements.py /src/images/
COPY pyproject.toml ./
# torch on PyPI is the CUDA build, linked against the CUDA runtime libraries of its
# nvidia-* wheels (import fails without them, even on CPU); cpu-requirements.py leaves
# only triton (1 GB, the GPU kernel compiler) out of pip's own resolution of the
# dependencies of "./[train]". They get a layer of their own, keyed by pyproject.toml
# only. The pip cache is a build-time mount, never in a layer.
# hadolint ignore=DL3042
RUN pip install pip==25.3 \
 && python images/cpu-requirements.py --pyproject pyproject.toml --extra train >/tmp/req.txt \
 && pip install --no-deps -r /tmp/req.txt \
 && rm -rf /src/* /tmp/req.txt

# --- runtime: the package on top of the dependency layer ------------------------------
FROM build
LABEL org.opencontainers.image.title="sailvl-job-cpu"
COPY pyproject.toml README.md /src/
COPY sailvl/ /src/sailvl/
RUN pip install --no-cache-dir --no-deps /src && rm -rf /src
ENV PYTHONUNBUFFERED=1 \
    HOME=/home/sailvl
USER 1000:1000
WORKDIR /home/sailvl
EXPOSE 9400
ENTRYPOINT ["sailvl"]
CMD ["train", "--config", "/etc/sailvl/job.yaml"]
