# Task Gateway: a slim, non-root image.
#   docker build -t task-gateway .
#   docker run -p 8000:8000 -e TASK_GATEWAY_CONFIG=/etc/task-gateway/gateway.toml \
#     -v $PWD/deploy/example.toml:/etc/task-gateway/gateway.toml:ro \
#     -e TASK_GATEWAY_API_KEYS=… -e TASK_GATEWAY_ORQ_API_KEY=… task-gateway
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# The otlp extra lets OTEL_EXPORTER_OTLP_ENDPOINT turn tracing on; it stays off without it.
RUN pip install ".[otlp]" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER 10001

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

# One worker per container, several containers: metrics, circuit breakers and the in-memory
# cache live in a process, so /metrics then describes the whole container; scale with
# replicas (deploy/compose.yaml). SIGTERM (docker stop) finishes in-flight requests (up to
# 25 s) and closes upstream clients. --proxy-headers is on; trust the load balancer with
# FORWARDED_ALLOW_IPS. Settings: $TASK_GATEWAY_CONFIG and TASK_GATEWAY_* variables.
STOPSIGNAL SIGTERM
CMD ["task-gateway", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"]
