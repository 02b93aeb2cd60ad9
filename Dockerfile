# vecdial HTTP service on the CPU. Build: docker build -t vecdial .
# Run:   docker run -p 8000:8000 -v vecdial-data:/data vecdial
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    VECDIAL_DATA_DIR=/data

WORKDIR /app
# torch first and pinned, so the extras resolve against it. To keep the image
# small, point PIP_INDEX_URL at an index of CPU-only torch wheels when building.
ARG PIP_INDEX_URL
RUN pip install --no-cache-dir torch==2.13.0
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY models ./models
COPY service ./service
COPY vecdial ./vecdial
RUN pip install --no-cache-dir '.[all]'

VOLUME /data
EXPOSE 8000
# Build the demo collection on first start if the data dir is empty, then serve.
CMD ["sh", "-c", "vecdial info -c demo >/dev/null 2>&1 || vecdial build --demo --quiet; exec vecdial serve --host 0.0.0.0 --port 8000"]
