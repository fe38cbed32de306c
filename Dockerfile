# shared-state: the sidecar image. Build: docker build -t shared-state .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
# The JS client's modules: the wheel carries them (hatch_build.py), the service serves them.
COPY clients/js/client.js clients/js/index.js clients/js/react.js ./clients/js/
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SHARED_STATE_HOST=0.0.0.0 \
    SHARED_STATE_PORT=8080 \
    SHARED_STATE_SNAPSHOT_PATH=/data/state-snapshot.json
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /data --create-home shared-state
USER shared-state
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('SHARED_STATE_PORT', '8080')}/healthz\", timeout=2)"]
ENTRYPOINT ["shared-state"]
CMD ["serve", "--host", "0.0.0.0"]
