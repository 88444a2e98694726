# Images of the MAS backend and its operator, one Dockerfile, two targets:
#   docker buildx build --target server   -t mas-server .
#   docker buildx build --target operator -t mas-operator .
# Multi-arch (what .github/workflows/build.yml does): --platform linux/amd64,linux/arm64. The Rust
# build always runs natively on the build host ($BUILDPLATFORM) and cross-compiles for the target,
# so arm64 images need no emulated rustc (build.yml still sets up QEMU for RUN steps in target
# stages; the runtime stages have none today).
#
# Container contract (kept from the seed):
#   - runs as uid/gid 1001 (files and volumes of the seed are owned by 1001); no shell, no curl;
#   - works with a read-only root filesystem: the only write paths are /app/recordings (owned by
#     1001) and /tmp (mount an emptyDir/tmpfs on both, e.g. docker run --read-only
#     --tmpfs /tmp -v recordings:/app/recordings ...);
#   - the server listens on $PORT (8000), reports APP_VERSION in /api/health and x-app-version,
#     and answers its own HEALTHCHECK through `mas-server healthcheck` (no curl in the image).
#
# No `# syntax=` line: the features used (RUN --mount, COPY --chown, FROM --platform) are in the
# Dockerfile frontend built into BuildKit/Docker >= 23, so no unpinned frontend image is pulled.
# Base images are pinned by digest, written out in FROM lines so that Dependabot (which does not
# resolve ARGs in FROM) can bump them; by hand:
#   docker buildx imagetools inspect rust:1.95-bookworm                     # "Digest:" line
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
# and replace the sha256 below. The digest must be the multi-arch index digest (the one
# `imagetools inspect` prints first), not a per-platform manifest, or arm64 builds break.
# Both must stay on the same Debian release (bookworm = glibc 2.36): the binaries link against the
# build image's glibc and run on the runtime image's.

# ---- build ------------------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# A C cross compiler (aws-lc-sys and ring compile C) only when the target differs from the host.
# The packages come from the pinned image's Debian release; their exact versions are not pinned
# because bookworm point releases replace them (security fixes) and old versions leave the mirror.
# hadolint ignore=DL3008
RUN host=$(dpkg --print-architecture); \
    if [ "$host" != "$TARGETARCH" ]; then \
        case "$TARGETARCH" in \
            arm64) gnu=aarch64-linux-gnu ;; \
            amd64) gnu=x86-64-linux-gnu ;; \
            *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
        esac; \
        apt-get update \
        && apt-get install -y --no-install-recommends "gcc-$gnu" "libc6-dev-$TARGETARCH-cross" \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY Cargo.toml Cargo.lock ./
COPY server/ server/
COPY operator/ operator/
COPY cli/ cli/
COPY tests/harness/ tests/harness/
COPY migrations/ migrations/
COPY crds/ crds/
# Dependency caching: BuildKit cache mounts for the cargo registry, git checkouts and target/,
# not cargo-chef. With the mounts cargo's own fingerprints decide what to rebuild, so editing one
# crate (or bumping one dependency) recompiles just that crate, and no extra tool has to be built
# into the image; cargo-chef re-cooks every dependency whenever Cargo.lock changes. The cost: a
# cache mount lives on the builder, not in the exported layer cache, so a fresh CI runner starts
# cold (build.yml still reuses unchanged layers through the GitHub Actions cache). target/ is a
# mount, so the binaries are copied out within the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    case "$TARGETARCH" in \
        amd64) triple=x86_64-unknown-linux-gnu; cc=x86_64-linux-gnu-gcc ;; \
        arm64) triple=aarch64-unknown-linux-gnu; cc=aarch64-linux-gnu-gcc ;; \
        *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    if [ "$(dpkg --print-architecture)" != "$TARGETARCH" ]; then \
        rustup target add "$triple"; \
        env_triple=${triple//-/_}; \
        export "CC_${env_triple}=$cc" "CARGO_TARGET_${env_triple^^}_LINKER=$cc"; \
    fi; \
    cargo build --release --locked --target "$triple" --bin mas-server --bin mas-operator \
    && mkdir -p /out/app/recordings \
    && cp "target/$triple/release/mas-server" "target/$triple/release/mas-operator" /out/

# ---- runtime base: labels, user, write paths --------------------------------------------------
# Distroless cc (glibc, libgcc, CA certificates, tzdata; no shell, no package manager) rather than
# debian:bookworm-slim: nothing in the image runs a shell (ENTRYPOINT, HEALTHCHECK and the
# operator's probes are exec-form), so ~60 MB of packages and their CVE stream go away. Debug with
# `kubectl debug --image=busybox --target=app`. (scripts/image-contract swaps this line for a
# locally assembled stand-in.)
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:e2d29aec8061843706b7e484c444f78fafb05bfe47745505252b1769a05d14f1 AS runtime
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/myanalyticsschool/mas-platform
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="MyAnalyticsSchool" \
      org.opencontainers.image.title="mas" \
      org.opencontainers.image.description="MAS platform runtime base"
# /app and everything in it belong to root (read-only for the server) except /app/recordings (the
# seed's recordings volume), owned by 1001 so that a named volume mounted there starts out
# writable by the server; /tmp is the base image's (1777). The distroless base's USER is 65532:
# root only while laying this out, since WORKDIR creates /app as the current user.
USER 0:0
WORKDIR /app
COPY --from=build --chown=1001:1001 /out/app/recordings/ /app/recordings/
USER 1001:1001

# ---- operator ---------------------------------------------------------------------------------
FROM runtime AS operator
LABEL org.opencontainers.image.title="mas-operator" \
      org.opencontainers.image.description="Kubernetes operator releasing MasBackend resources as health-gated blue/green releases"
COPY --from=build /out/mas-operator /usr/local/bin/mas-operator
# The chart's liveness/readiness probes use /healthz and /readyz on 8080; the image has no
# HTTP client to check them itself.
HEALTHCHECK NONE
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mas-operator"]
CMD ["run"]

# ---- server -----------------------------------------------------------------------------------
FROM runtime AS server
ARG VERSION=dev
LABEL org.opencontainers.image.title="mas-server" \
      org.opencontainers.image.description="MAS / Mr. Mentor backend: REST API, Socket.IO, terminal relay and queue workers"
COPY --from=build /out/mas-server /usr/local/bin/mas-server
COPY server/assets/ /app/assets/
ENV HOST=0.0.0.0 \
    PORT=8000 \
    ASSETS_DIR=/app/assets \
    APP_VERSION=${VERSION}
# 8000: HTTP API; 9090 (INTERNAL_PORT: drain, metrics) is for the operator only and not exposed.
EXPOSE 8000
# The server listens within a second of starting, but its start also connects to PostgreSQL and
# Redis and (unless MIGRATE_ON_START=false) applies migrations under a lock: failures in the first
# 10s do not count. Then every 10s: the check is one loopback GET of /api/health (its own limit is
# 3s; the 5s timeout leaves it room to print why it failed); 3 misses in a row (about 30s) mark
# the container unhealthy, long enough to ride out a PostgreSQL or Redis failover without a
# restart storm. (--start-interval is left out: buildah/podman 4 and Docker < 25 reject it.)
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/mas-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mas-server"]
