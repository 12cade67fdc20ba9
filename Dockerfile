# syntax=docker/dockerfile:1
# posthog-driver: the CLI, its MCP server (`mcp --http`) and the local PostHog stand-in
# (`serve-local`). Build:  docker build -t posthog-driver .
# BASE must provide Python >= 3.11 with the venv module (python:3.1x-slim does).
ARG BASE=python:3.12-slim

# ---- build: a virtualenv with the package and its local + mcp extras ----
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
ARG EXTRAS=local,mcp
RUN pip install --upgrade pip \
 && pip install ".[${EXTRAS}]" \
 && posthog-driver --version

# ---- runtime ----
FROM ${BASE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEALTH_PORT=8010
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
USER app
WORKDIR /home/app
# 8010: serve-local (PostHog-compatible API); 8765: mcp --http (streamable HTTP at /mcp)
EXPOSE 8010 8765
# Any HTTP answer (401 without a key/token is fine) means the server is up.
# For `mcp --http` set HEALTH_PORT=8765.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os,sys,urllib.request as u,urllib.error as e\ntry: u.urlopen('http://127.0.0.1:%s/' % os.environ.get('HEALTH_PORT','8010'), timeout=4)\nexcept e.HTTPError: pass\nexcept Exception: sys.exit(1)"]
ENTRYPOINT ["posthog-driver"]
# Servers bind 127.0.0.1 by default; in a container bind all interfaces.
# The engine's bubblewrap sandbox needs user namespaces, which default Docker seccomp/AppArmor
# profiles usually deny: `--sandbox auto` then runs the engine unsandboxed with a warning.
CMD ["serve-local", "--host", "0.0.0.0", "--port", "8010", "--sandbox", "auto"]
