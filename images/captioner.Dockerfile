# syntax=docker/dockerfile:1.7
# Recaption worker with LMDeploy (TurboMind on CUDA). LMDeploy pins its own torch, so it
# gets an image of its own; the transformers backend runs in the evaluator image too.
# Build from the repository root: docker build -f images/captioner.Dockerfile .

# --- build --------------------------------------------------------------------------------
FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv --system-site-packages /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sailvl/ sailvl/
# The LMDeploy pin (and the transformers range it needs) lives in one file, shared with
# the Ascend captioner and the contract test's venv (tests/fixtures/lmdeploy/install.sh).
COPY images/lmdeploy-requirements.txt ./
RUN pip install --no-cache-dir -r lmdeploy-requirements.txt "./[train]"

# --- runtime --------------------------------------------------------------------------------
FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime
LABEL org.opencontainers.image.title="sailvl-captioner"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/sailvl
# Some bases already define uid 1000 (e.g. a default user); reuse it rather than fail.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --create-home --home-dir /home/sailvl --shell /usr/sbin/nologin sailvl) \
 && mkdir -p /home/sailvl && chown 1000:1000 /home/sailvl
USER 1000:1000
WORKDIR /home/sailvl
EXPOSE 9400
ENTRYPOINT ["sailvl"]
CMD ["caption", "--config", "/etc/sailvl/job.yaml"]
