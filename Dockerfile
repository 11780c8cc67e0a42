# facehugger's images (see "Docker" in README.md). Stages:
#   deps        the toolchain and the dependencies fetched (a layer keyed on the manifests only)
#   source      deps and the sources
#   build       release binaries: facehugger, cargo-facehugger, test-hub
#   check       what CI checks: cargo fmt, clippy -D warnings, every test with the Python referee
#                 docker build --target check .
#   runtime     the image to use: debian:bookworm-slim, a non-root user, facehugger only
#   image-test  the runtime image syncing from the test hub, as its non-root user
#                 docker build --target image-test .
# The last stage is the runtime image again, so that a plain `docker build -t facehugger .` builds
# it (and neither `check` nor `image-test`).

# Keep at or above rust-version in Cargo.toml.
FROM rust:1.95-slim-bookworm AS deps
WORKDIR /src
# Manifests first: the crates.io download is a layer of its own that only a change to Cargo.toml or
# Cargo.lock invalidates. test-hub needs a target to parse; the real sources replace the stub below.
COPY Cargo.toml Cargo.lock ./
COPY test-hub/Cargo.toml test-hub/
RUN mkdir -p test-hub/src \
    && touch test-hub/src/lib.rs \
    && cargo fetch --locked

FROM deps AS source
COPY . .

FROM source AS build
# target/ is a BuildKit cache mount, so compiled dependencies survive source changes (`check`
# mounts the same one: its debug and check-mode builds sit beside this release build; the profiles
# differ, so neither reuses the other's artifacts). The workspace's own sources are touched first:
# cargo decides freshness by mtime, and a cached target/ must never outlive a source file replaced
# by an older one. The binaries are copied out of the mount, which is not part of the image.
RUN --mount=type=cache,target=/src/target,id=facehugger-target,sharing=locked \
    find src tests test-hub -name '*.rs' -exec touch {} + \
    && cargo build --release --frozen --workspace --bins \
    && mkdir -p /out \
    && cp target/release/facehugger target/release/cargo-facehugger target/release/test-hub /out/

FROM deps AS check
# The tools first, in layers that only a change to the manifests or to scripts/setup-python
# invalidates (the sources come after them): python3 for the reference client that the interop tests
# run; strace for the test that reads a sync's system calls (without it, that test skips); uv from
# PyPI, into a venv of its own because Debian's Python refuses system-wide pip installs (PEP 668);
# rustfmt and clippy, which are not in the image's minimal toolchain profile; then
# scripts/setup-python makes .venv with huggingface_hub 2.4.0 (.dockerignore keeps the context's own
# .venv out, so the sources copied next leave it alone).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv strace \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir uv==0.13.9 \
    && rustup component add rustfmt clippy
ENV PATH=/opt/uv/bin:$PATH
COPY scripts/setup-python scripts/
RUN scripts/setup-python
COPY . .
# The same checks as .ci/run. scripts/test runs scripts/setup-python (already done), then cargo test
# with FACEHUGGER_REQUIRE_PYTHON=1, so the interop tests cannot be skipped. The build runs as root:
# the test that needs an unwritable cache drops to `nobody` with setpriv by itself.
RUN --mount=type=cache,target=/src/target,id=facehugger-target,sharing=locked \
    find src tests test-hub -name '*.rs' -exec touch {} + \
    && cargo fmt --all -- --check \
    && cargo clippy --frozen --workspace --all-targets --all-features -- -D warnings \
    && scripts/test --frozen

FROM debian:bookworm-slim AS runtime
# The default uid suits a bind mount of a project owned by the first user of a Linux host; build
# with --build-arg FACEHUGGER_UID="$(id -u)" --build-arg FACEHUGGER_GID="$(id -g)" to match yours.
ARG FACEHUGGER_UID=1000
ARG FACEHUGGER_GID=1000
LABEL org.opencontainers.image.title="facehugger" \
      org.opencontainers.image.description="Declare the Hugging Face Hub repos a project needs, lock them to commits, and sync them into the shared HF cache" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# ca-certificates: facehugger trusts the system certificates (rustls-platform-verifier).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "$FACEHUGGER_GID" facehugger \
    && useradd --no-log-init --uid "$FACEHUGGER_UID" --gid facehugger --create-home \
        --shell /usr/sbin/nologin facehugger \
    && install -d -o facehugger -g facehugger /data/huggingface /work
# Only facehugger: cargo-facehugger is a cargo subcommand, of no use without cargo.
COPY --from=build /out/facehugger /usr/local/bin/facehugger
# The HF cache is $HF_HOME/hub (and a token may sit in $HF_HOME/token); mount a volume there to keep
# it between runs. The project (facehugger.yaml, facehugger.lock) is mounted at /work.
ENV HF_HOME=/data/huggingface
VOLUME ["/data/huggingface"]
WORKDIR /work
USER ${FACEHUGGER_UID}:${FACEHUGGER_GID}
ENTRYPOINT ["facehugger"]

FROM runtime AS image-test
# Root owns these; the user only reads and runs them.
COPY --from=build /out/test-hub /usr/local/bin/test-hub
COPY fixtures/hub /opt/test-hub/fixtures
# Still the runtime image's user, never root.
RUN id && test "$(id -u)" -ne 0
ENV TEST_HUB_FIXTURES=/opt/test-hub/fixtures
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# A real sync, as that user, in the WORKDIR and into the HF_HOME volume's folder: start the test hub
# on loopback, read its endpoint, sync a manifest, check the cache, then sync again and check that
# nothing was downloaded. The script must hold under any shell, since a builder that writes OCI
# images (podman's default) ignores SHELL and runs it with /bin/sh (dash here, which has no
# pipefail): so it is POSIX sh with no pipe (each sync's output goes to a log that is then shown,
# and its exit status counts), and sets pipefail itself where the shell has it. tests/it/docker.rs
# runs this same RUN on the host under both shells (with the test hub's stand-in and a temporary
# HF_HOME and WORKDIR), so keep it to POSIX sh and coreutils.
RUN set -eu; \
    if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi; \
    facehugger --version; \
    facehugger --help; \
    work="$(mktemp -d)"; \
    test-hub --fixtures "$TEST_HUB_FIXTURES" >"$work/hub.out" 2>"$work/hub.err" </dev/null & \
    hub_pid=$!; \
    trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$work"' EXIT; \
    logged() { status=0; facehugger >"$work/$1.log" 2>&1 || status=$?; cat "$work/$1.log"; return "$status"; }; \
    for _ in $(seq 100); do grep -q '^endpoint=' "$work/hub.out" && break; sleep 0.1; done; \
    HF_ENDPOINT="$(sed -n 's/^endpoint=//p' "$work/hub.out")"; \
    test -n "$HF_ENDPOINT" || { cat "$work/hub.err"; exit 1; }; \
    export HF_ENDPOINT; \
    printf '%s\n' 'models:' '  - repo: acme/tiny' '    include: ["*.json", "*.safetensors"]' >facehugger.yaml; \
    logged first; \
    grep -q 'Downloading acme/tiny@main' "$work/first.log"; \
    repo="$HF_HOME/hub/models--acme--tiny"; \
    snapshot="$repo/snapshots/$(cat "$repo/refs/main")"; \
    test -s "$snapshot/config.json"; \
    test -s "$snapshot/model.safetensors"; \
    test -s facehugger.lock; \
    logged second; \
    grep -q 'Fresh acme/tiny@main' "$work/second.log"; \
    grep -q '(0 downloaded' "$work/second.log"; \
    rm -rf facehugger.yaml facehugger.lock "$HF_HOME/hub"; \
    echo 'image-test: facehugger synced from the test hub as a non-root user'

# The default target: the runtime image.
FROM runtime
