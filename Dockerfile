# shopledger: one image for every process of the scaled deployment (compose.yaml):
#   shopledger serve | shopledger projections run | shopledger worker
#
#   docker build -t shopledger:latest .
#
# Three stages keep the runtime image small and its layers cache-friendly:
#   deps    a virtualenv with the runtime dependencies only, built from pyproject.toml alone,
#           so editing code never reinstalls them;
#   wheel   the project itself, built as a wheel from the source;
#   runtime python:3.11-slim + the deps virtualenv + the project wheel (--no-deps), no build
#           tools, no dev extras, no tests, running as an unprivileged user.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# --- deps: [project].dependencies of pyproject.toml, nothing else ------------------------------
FROM base AS deps
WORKDIR /build
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && python -m venv /opt/venv \
 && pip install --requirement requirements.txt

# --- wheel: the project (packages listed in pyproject.toml; .dockerignore trims the context) ----
FROM base AS wheel
WORKDIR /build
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime ------------------------------------------------------------------------------------
FROM base AS runtime
# A fixed uid/gid so that a secret file on the host can be made readable by it (chown 10001).
RUN groupadd --system --gid 10001 shopledger \
 && useradd --system --uid 10001 --gid shopledger --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin shopledger
COPY --from=deps /opt/venv /opt/venv
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
# Writable run-time directory (default mail directory, generated key when none is mounted).
# Created here so that a named volume mounted on /app/var/mail inherits the ownership.
WORKDIR /app
RUN mkdir -p /app/var/mail && chown -R shopledger:shopledger /app/var
# Production unless told otherwise: no ECPay test merchant, no SimulatePaid, no sandbox cards.
ENV SHOPLEDGER_VAR_DIR=/app/var \
    SHOPLEDGER_ENVIRONMENT=production
USER shopledger:shopledger
EXPOSE 8000
# Liveness of `serve` (slim has no curl). Processes that serve no HTTP (projections, worker)
# disable it in compose.yaml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["shopledger"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
