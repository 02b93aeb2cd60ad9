# vecdial HTTP service on the CPU. Build: docker build -t vecdial .
# Run:   docker run -p 8000:8000 -e VECDIAL_API_KEY=... -v vecdial-data:/data vecdial
# It listens on 0.0.0.0 inside the container, so without VECDIAL_API_KEY it refuses to start
# unless VECDIAL_ALLOW_NO_API_KEY=1 says a proxy or the network authenticates clients.
# An empty /data gets the demo collection on first start; a /data holding anything is
# served as it is. Arguments after the image name go to `vecdial serve` (e.g. --workers 2).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    VECDIAL_DATA_DIR=/data \
    VECDIAL_HOST=0.0.0.0 \
    VECDIAL_PORT=8000

WORKDIR /app
# torch first, the CPU-only build (PyTorch's CPU wheel index where it can be reached, else
# pip's index: set PIP_INDEX_URL to a mirror of CPU wheels), so the extras resolve against it.
ARG PIP_INDEX_URL
COPY scripts/install_torch.sh scripts/docker_entrypoint.py ./scripts/
RUN PIP_NO_CACHE_DIR=1 bash scripts/install_torch.sh python
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY models ./models
COPY service ./service
COPY vecdial ./vecdial
RUN pip install --no-cache-dir '.[all]'

# An unprivileged user owns the data directory (a new named volume starts with this ownership)
# and its home (numba's and vecdial's caches).
RUN useradd --system --create-home --uid 10001 vecdial && mkdir -p /data && chown vecdial:vecdial /data
USER vecdial
VOLUME /data
EXPOSE 8000
# Ready (200) once every collection is open; 503 while starting, stopping or degraded.
# The start period covers the demo's first build, which encodes its texts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('VECDIAL_PORT', '8000')}/readyz\", timeout=4)"]
ENTRYPOINT ["python", "/app/scripts/docker_entrypoint.py"]
