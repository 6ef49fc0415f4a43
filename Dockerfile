# Task Gateway: a slim, non-root image. Build: docker build -t task-gateway .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install . && useradd --system --uid 10001 --no-create-home gateway
USER gateway

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

# One uvicorn worker per core is the usual choice; the gateway is async and I/O bound.
# Settings come from $TASK_GATEWAY_CONFIG (mount a TOML file) and TASK_GATEWAY_* variables.
CMD ["task-gateway", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
