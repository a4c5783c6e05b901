# rlfleet's image for a Ray cluster (KubeRay RayCluster in docs/cluster.md, or any host):
# Python 3.11, the CPU torch wheel pinned, rlfleet with its ray and redis extras, redis-server
# (started on the learner's node when no --redis URL is given).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

# the CPU wheel first, pinned: nothing later may replace it with a CUDA build (every install
# below repeats the pin). Where the package index you build against serves CUDA builds of torch
# by default, point pip at a CPU-wheel index: docker build --build-arg PIP_EXTRA_INDEX_URL=...
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
RUN pip install --no-cache-dir torch==2.13.0

WORKDIR /opt/rlfleet
COPY pyproject.toml README.md ./
COPY rlfleet ./rlfleet
RUN pip install --no-cache-dir ".[ray,compression]" torch==2.13.0 \
    && python -c "import torch, ray, rlfleet; assert torch.__version__.startswith('2.13.0') and not torch.version.cuda"

# Ray's ports (see docs/cluster.md): GCS 6379, client 10001, dashboard 8265
EXPOSE 6379 10001 8265
# KubeRay replaces the command with its own `ray start`; a plain container gets a shell
CMD ["bash"]
