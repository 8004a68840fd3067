# syntax=docker/dockerfile:1
# The production image: the service and its runtime dependencies from uv.lock (hashes checked), on a base
# image pinned by digest, run as an unprivileged user. No embedded database, no test tools, no uv, no pip.
#
# Base image: Python 3.12.13 slim on Debian trixie, pinned by the digest of its multi-arch index as
# published in docker-library/repo-info (repos/python/remote/3.12.13-slim-trixie.md). Docker pulls by the
# digest; the tag is for readers and the base.name label. To renew: take the current digest of the tag from
# that file, or from `docker buildx imagetools inspect python:3.12-slim-trixie` (its "Digest:" line), set
# both values below, build, and run the tests (tests/packaging/test_dockerfile.py checks the form).
ARG PYTHON_TAG=3.12.13-slim-trixie
ARG PYTHON_DIGEST=sha256:229a2c5bfa27522db7815ea81f9bed70af17ccb9de9fc7ad142b1877b5830d36

# Build stage: uv (pinned, hash-checked) installs the locked dependencies and the project into /opt/venv.
FROM docker.io/library/python:${PYTHON_TAG}@${PYTHON_DIGEST} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
COPY tools/uv.txt tools/uv.txt
RUN python -m venv /opt/uv \
    && /opt/uv/bin/pip install --require-hashes --no-deps -r tools/uv.txt
# The dependencies first, in a layer of their own that stays cached while only app/ changes. --locked
# refuses a uv.lock that no longer matches pyproject.toml; no --extra and no group: runtime packages only.
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --locked --no-default-groups --no-install-project
# Then the project itself, as a regular (not editable) install, built by the hash-pinned setuptools.
COPY README.md LICENSE ./
COPY app ./app
RUN /opt/uv/bin/uv sync --locked --no-default-groups --no-editable

# Runtime stage: the same base, only the virtualenv.
FROM docker.io/library/python:${PYTHON_TAG}@${PYTHON_DIGEST}
ARG PYTHON_TAG
ARG PYTHON_DIGEST
# Set by whoever builds a release: --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%FT%TZ)
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="git-integrations" \
      org.opencontainers.image.description="GraphQL API that connects GitHub and GitLab accounts to a deployment platform and lists their repositories" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:${PYTHON_TAG}" \
      org.opencontainers.image.base.digest="${PYTHON_DIGEST}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/var/lib/git-integrations
# pip is not needed to run the service; without it nothing can be installed into a running container.
RUN python -m pip uninstall --yes --quiet pip \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/git-integrations && chown app /var/lib/git-integrations
COPY --from=build /opt/venv /opt/venv
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
CMD ["git-integrations", "serve"]
