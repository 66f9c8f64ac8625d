# The hub's image: `lgsp serve` on PostgreSQL, one worker per core.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY registry registry
COPY audit audit
COPY messaging messaging
COPY connectors connectors
COPY gateway gateway
COPY simulators simulators
RUN pip install --no-cache-dir . && useradd --system --uid 10001 lgsp \
    && mkdir -p /var/lib/lgsp/archive && chown lgsp /var/lib/lgsp/archive
USER lgsp
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz')" || exit 1
CMD ["lgsp", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
