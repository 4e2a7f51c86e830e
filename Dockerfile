# syntax=docker/dockerfile:1
# tempo-fast as one container image: the single binary, every component in one process.
#
#   docker build -t tempo-fast .
#   docker run -p 3200:3200 -p 4317:4317 -p 4318:4318 -v tempo-data:/var/tempo tempo-fast
#
# The build context is the repository root (the image needs core_rs/, ext/ and tempo_fast/),
# which is why this file lives here and not under deploy/. The image's default configuration is
# deploy/tempo-fast.yaml (local disk under /var/tempo); mount another at /etc/tempo.yaml, as
# deploy/docker-compose/single-binary-minio/ does for S3 (MinIO).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# A Rust toolchain new enough for pyo3 0.30 and arrow/parquet 60 (Debian's rustc is too old).
ARG RUST_IMAGE=rust:1.95-slim-bookworm

FROM ${RUST_IMAGE} AS rust

# ---- builder: the same two builds `make build` does (`pip install ./ext .`), as wheels ------
FROM ${PYTHON_IMAGE} AS builder
# MATURIN_PEP517_ARGS: what maturin's PEP 517 backend passes to `maturin build` (the committed
# Cargo.lock, as is)
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH \
    CARGO_TARGET_DIR=/build/target \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    MATURIN_PEP517_ARGS="--locked"
# cc links the Rust extension and compiles zstd (parquet) and the Cython kernels
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
RUN rustc --version && cargo --version && pip install --upgrade pip==26.3

WORKDIR /src
# Cython kernels (tempo_fast_kernels): setuptools + Cython, pinned in ext/pyproject.toml
COPY ext/ ext/
RUN pip wheel --no-deps --wheel-dir /wheels ./ext

# Rust core + Python package (tempo_fast with tempo_fast._core): maturin, release, per
# pyproject.toml's [tool.maturin] (manifest core_rs/py/Cargo.toml, python-packages tempo_fast)
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY core_rs/ core_rs/
COPY tempo_fast/ tempo_fast/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the two wheels and their PyPI dependencies (all published as wheels) ------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TEMPO_DATA=/var/tempo
# Wheel files named on the command line satisfy tempo-fast's tempo-fast-kernels requirement.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install /wheels/*.whl \
 && tempo-fast -version \
 && python -c "import tempo_fast._core, tempo_fast_kernels; from tempo_fast.config import known_tree, default_yaml; known_tree(); default_yaml()"

RUN groupadd --system --gid 10001 tempo \
 && useradd --system --uid 10001 --gid tempo --home-dir /var/tempo --shell /usr/sbin/nologin tempo \
 && mkdir -p /var/tempo \
 && chown tempo:tempo /var/tempo
COPY deploy/tempo-fast.yaml /etc/tempo.yaml

# WAL, blocks (local backend) and staged blocks (s3 backend)
VOLUME /var/tempo
WORKDIR /var/tempo
USER 10001:10001

# HTTP API 3200, OTLP gRPC 4317 and HTTP 4318; the default config also enables Zipkin 9411,
# Jaeger gRPC 14250, thrift HTTP 14268 and the agent's UDP 6831/6832
EXPOSE 3200 4317 4318 9411 14250 14268 6831/udp 6832/udp
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('TEMPO_HTTP_PORT', '3200'), timeout=4)"]
# SIGTERM stops it gracefully (not ready, drain, flush), within server.graceful_shutdown_timeout
STOPSIGNAL SIGTERM
ENTRYPOINT ["tempo-fast"]
CMD ["-config.file=/etc/tempo.yaml", "-config.expand-env=true"]
