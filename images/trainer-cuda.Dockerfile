# syntax=docker/dockerfile:1.7
# Trainer for NVIDIA GPUs: PyTorch + DeepSpeed (fused Adam prebuilt) + flash-attn.
# Build from the repository root: docker build -f images/trainer-cuda.Dockerfile .

# --- build: compile flash-attn and DeepSpeed ops against the devel image's nvcc ---------
FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-devel AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # A100 (8.0) and H100/H200 (9.0); the kernels are compiled for these only.
    TORCH_CUDA_ARCH_LIST="8.0;9.0" \
    MAX_JOBS=8 \
    DS_BUILD_OPS=0 DS_BUILD_FUSED_ADAM=1
# --system-site-packages reuses the base image's torch instead of downloading it again.
RUN python -m venv --system-site-packages /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir ninja==1.11.1.4 packaging==24.2 \
 && pip install --no-cache-dir --no-build-isolation flash-attn==2.8.3 deepspeed==0.17.5
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sailvl/ sailvl/
RUN pip install --no-cache-dir "./[train]"

# --- runtime: the runtime image (no compilers) plus the venv ------------------------------
FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime
LABEL org.opencontainers.image.title="sailvl-trainer-cuda"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/sailvl
# Some bases already define uid 1000 (e.g. a default user); reuse it rather than fail.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --create-home --home-dir /home/sailvl --shell /usr/sbin/nologin sailvl) \
 && mkdir -p /home/sailvl && chown 1000:1000 /home/sailvl
USER 1000:1000
WORKDIR /home/sailvl
# Job pods serve Prometheus metrics here (sailvl.runtime.metrics.JOB_METRICS_PORT).
EXPOSE 9400
ENTRYPOINT ["sailvl"]
# The operator mounts the job config from a ConfigMap; this is the default invocation.
CMD ["train", "--config", "/etc/sailvl/job.yaml"]
