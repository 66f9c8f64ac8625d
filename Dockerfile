# The hub's image: `lgsp serve` on PostgreSQL. It installs exactly what uv.lock says, without the
# test tools and without the simulated systems (those are for the demo and the tests only).
FROM python:3.11-slim AS build
# The same uv as scripts/uv-requirements.txt (a test checks that they agree).
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/lgsp
WORKDIR /src
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY schemas schemas
COPY registry registry
COPY audit audit
COPY connectors connectors
COPY messaging messaging
COPY gateway gateway
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim
COPY --from=build /opt/lgsp /opt/lgsp
ENV PATH=/opt/lgsp/bin:$PATH
RUN useradd --system --uid 10001 lgsp \
    && mkdir -p /var/lib/lgsp/archive && chown lgsp /var/lib/lgsp/archive
USER lgsp
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz')" || exit 1
# Two worker processes: give the container two cores, or set --workers to the cores it has.
CMD ["lgsp", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
