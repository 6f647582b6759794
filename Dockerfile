# syntax=docker/dockerfile:1
# Friday sidecar: HTTP API (8000) + gRPC (50051), backed by Redis.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The build context is filtered by .dockerignore (no .venv, .git, node package, tests).
# Two distributions: the client (clients/python: errors, result types, wire limits, generated
# gRPC code, which the sidecar imports) and the sidecar, which depends on it by name.
COPY . .
RUN python -m pip wheel --no-deps --wheel-dir /wheels ./clients/python .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FRIDAY_REDIS_URL=redis://redis:6379/0 \
    FRIDAY_HTTP_HOST=0.0.0.0 \
    FRIDAY_HTTP_PORT=8000 \
    FRIDAY_GRPC_HOST=0.0.0.0 \
    FRIDAY_GRPC_PORT=50051
COPY --from=build /wheels /wheels
# the sidecar with its `otel` extra: tracing stays off until OTEL_* asks for it (README, Tracing)
RUN python -m pip install /wheels/friday_bus_client-*.whl "$(echo /wheels/friday_eventbus-*.whl)[otel]" && rm -rf /wheels \
    && groupadd --system --gid 10001 friday \
    && useradd --system --uid 10001 --gid friday --home-dir /home/friday --create-home friday
USER friday
WORKDIR /home/friday
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('FRIDAY_HTTP_PORT', '8000'), timeout=4)"]
CMD ["friday", "serve"]
