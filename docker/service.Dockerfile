# syntax=docker/dockerfile:1.7
# One image per service, from the repo root (shared code is imported from libs/, never copied per service):
#
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=render \
#       --build-arg EXTRA_APT_PACKAGES=fonts-noto-cjk -t reelforge/render .
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=gateway \
#       --build-arg WEB_APP=build -t reelforge/gateway .      # with the web app (a node stage builds web/)
#
#   docker run reelforge/render            # python -m render api
#   docker run reelforge/render worker     # python -m render worker
#   docker run reelforge/render migrate    # python -m render migrate
#
# The entrypoint is `python -m $SERVICE`: a Dockerfile cannot expand a build ARG inside CMD, so the service
# name is baked into the image as REELFORGE_SERVICE and CMD holds only the command (`api`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
ARG UV_VERSION=0.13.9
# The gateway's image also carries the web app (--build-arg WEB_APP=build; docker-compose.yml sets it): built here
# from web/ (package-lock.json, the committed web/openapi.json) into /app/web/dist, where the gateway serves it.
# Other images get an empty web/dist (WEB_APP=none, the default) and never run the node stage.
ARG WEB_APP=none

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- web: the web app, for the gateway (npm ci installs exactly package-lock.json) ----
FROM ${NODE_IMAGE} AS web-build
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build --silent && test -f dist/index.html

FROM ${PYTHON_IMAGE} AS web-none
RUN mkdir -p /web/dist

FROM web-${WEB_APP} AS web

# ---- build: a venv with only this service's dependencies (no dev group) ----
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "$SERVICE" || (echo "build with --build-arg SERVICE=<gateway|ingest|...>" >&2; exit 1)
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# Third-party dependencies first (a layer that changes only with uv.lock), then the workspace code.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-workspace --package "reelforge-$SERVICE"

COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "reelforge-$SERVICE"

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
# System packages this service needs at run time, e.g. fonts-noto-cjk for render's Korean titles.
# (PyAV wheels bundle FFmpeg's libraries: no ffmpeg package is needed to transcode.)
ARG EXTRA_APT_PACKAGES=""
RUN if [ -n "$EXTRA_APT_PACKAGES" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $EXTRA_APT_PACKAGES \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 reelforge \
    && useradd --system --uid 10001 --gid reelforge --no-create-home --home-dir /nonexistent reelforge \
    && install -d -o reelforge -g reelforge /var/lib/reelforge /var/lib/reelforge/keys /var/lib/reelforge/storage

COPY --from=build /app /app
# the gateway finds it beside its checkout layout (/app/services/gateway -> /app/web/dist; WEB_DIR overrides)
COPY --from=web /web/dist /app/web/dist
COPY docker/entrypoint.sh /usr/local/bin/reelforge-entrypoint
COPY docker/healthcheck.py /usr/local/bin/reelforge-healthcheck

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REELFORGE_SERVICE=${SERVICE} \
    HTTP_HOST=0.0.0.0 \
    LOG_FORMAT=json \
    TMP_DIR=/tmp \
    GATEWAY_KEYS_DIR=/var/lib/reelforge/keys
WORKDIR /app
USER 10001:10001

LABEL org.opencontainers.image.title="reelforge-${SERVICE}"

# Each process answers /healthz on its own HTTP_PORT (api and worker alike).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/reelforge-healthcheck"]

ENTRYPOINT ["/usr/local/bin/reelforge-entrypoint"]
CMD ["api"]
