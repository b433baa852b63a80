# syntax=docker/dockerfile:1
# store-availability: build a wheel, install it into a slim image, run as a non-root user.
# The service expects DATABASE_URL (postgresql://user:pass@host:5432/db); see docker-compose.yml.

# --- stage 1: build the wheel ------------------------------------------------------
FROM python:3.11-slim AS build
# A C compiler for the engine's compiled modules (scripts/build_native.py); only here.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY reconcilers ./reconcilers
COPY scripts/build_native.py ./scripts/
# mypyc compiles app.domain.NATIVE into app/domain/native/, which the wheel carries
# (no .gitignore in this context); the runtime image runs them (same Python).
RUN pip install --no-cache-dir "mypy>=1.11" setuptools "msgspec>=0.18" "mypy-extensions>=1.0" \
    && python scripts/build_native.py --require
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# --- stage 2: the runtime image ----------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AVAILABILITY_DATA_DIR=/data \
    AVAILABILITY_LOG_FORMAT=json \
    PORT=8000
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/app app \
    && mkdir -p /data/demo \
    && chown -R app:app /data
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
USER app
WORKDIR /home/app
EXPOSE 8000
# No curl in slim images: ask /health with the Python that is already here.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)" || exit 1
CMD ["availability", "serve", "--host", "0.0.0.0"]
