# syntax=docker/dockerfile:1.7
# Trainer for Huawei Ascend NPUs (910B): CANN base, torch + torch_npu of the matching
# release (CANN 8.5.0 <-> torch/torch_npu 2.8.0), DeepSpeed with its NPU accelerator.
# Build from the repository root: docker build -f images/trainer-ascend.Dockerfile .
# Built for both architectures (x86 910B hosts such as the paper's, and Kunpeng arm64
# servers): docker buildx build --platform linux/amd64,linux/arm64 -f images/trainer-ascend.Dockerfile .
# The CANN base is multi-arch, the CPU torch index serves x86_64 (+cpu) and aarch64
# wheels of one version, torch-npu publishes both. The image also runs Ascend evals
# (EvalSuite on accelerator ascend): it holds the evaluator's whole stack.

# --- build: install torch_npu and the package into a venv --------------------------------
FROM quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU torch wheel: NPU kernels come from torch_npu + CANN, not from CUDA.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.8.0 \
 && pip install --no-cache-dir torch-npu==2.8.0 deepspeed==0.17.5 \
    pyyaml==6.0.2 numpy==1.26.4 decorator==5.1.1 attrs==24.2.0 psutil==6.1.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sailvl/ sailvl/
RUN pip install --no-cache-dir "./[train]"

# --- runtime --------------------------------------------------------------------------------
FROM quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11
LABEL org.opencontainers.image.title="sailvl-trainer-ascend"
COPY --from=build /opt/venv /opt/venv
COPY images/ascend-env.sh /usr/local/bin/ascend-env
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/sailvl
# The device plugin mounts /dev/davinci* into the pod; where the host driver restricts
# them to a group, give the pod that group through securityContext.supplementalGroups.
# Some bases already define uid 1000 (e.g. a default user); reuse it rather than fail.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --create-home --home-dir /home/sailvl --shell /usr/sbin/nologin sailvl) \
 && mkdir -p /home/sailvl && chown 1000:1000 /home/sailvl
USER 1000:1000
WORKDIR /home/sailvl
EXPOSE 9400
# The operator passes only args (`train|eval --config ...`), so this wrapper always runs.
ENTRYPOINT ["/usr/local/bin/ascend-env", "sailvl"]
CMD ["train", "--config", "/etc/sailvl/job.yaml"]
