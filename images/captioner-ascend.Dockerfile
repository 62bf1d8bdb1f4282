# syntax=docker/dockerfile:1.7
# Recaption worker on Huawei Ascend NPUs (910B): LMDeploy's PyTorch engine
# (PytorchEngineConfig(device_type='ascend')) on CANN through torch_npu and dlinfer, the
# Ascend counterpart of images/captioner.Dockerfile (TurboMind is CUDA-only).
# Both architectures, like the Ascend trainer (see images/README.md):
#   docker buildx build --platform linux/amd64,linux/arm64 -f images/captioner-ascend.Dockerfile .
# The CPU torch index serves x86_64 (+cpu) and aarch64 wheels of the same version, and
# torch-npu / dlinfer-ascend publish wheels for both, so one file builds both images.

# --- build --------------------------------------------------------------------------------
FROM quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# LMDeploy's pin is images/lmdeploy-requirements.txt, shared with the CUDA captioner and
# the contract test's venv; its torch (2.8.0 for LMDeploy 0.10.0) is the one below.
COPY images/lmdeploy-requirements.txt /tmp/
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.8.0 \
 && pip install --no-cache-dir torch-npu==2.8.0 \
    pyyaml==6.0.2 numpy==1.26.4 decorator==5.1.1 attrs==24.2.0 psutil==6.1.0 \
 && pip install --no-cache-dir -r /tmp/lmdeploy-requirements.txt dlinfer-ascend==0.2.7
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sailvl/ sailvl/
RUN pip install --no-cache-dir "./[train]"

# --- runtime --------------------------------------------------------------------------------
FROM quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11
LABEL org.opencontainers.image.title="sailvl-captioner-ascend"
COPY --from=build /opt/venv /opt/venv
COPY images/ascend-env.sh /usr/local/bin/ascend-env
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/sailvl
# Some bases already define uid 1000 (e.g. a default user); reuse it rather than fail.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --create-home --home-dir /home/sailvl --shell /usr/sbin/nologin sailvl) \
 && mkdir -p /home/sailvl && chown 1000:1000 /home/sailvl
USER 1000:1000
WORKDIR /home/sailvl
EXPOSE 9400
# The operator passes only args (`caption --config ...`), so this wrapper always runs.
ENTRYPOINT ["/usr/local/bin/ascend-env", "sailvl"]
CMD ["caption", "--config", "/etc/sailvl/job.yaml"]
