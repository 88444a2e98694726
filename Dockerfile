# Builds both binaries; the runtime images are small Debian slim images with a non-root user.
#   docker build --target server -t mas-server .
#   docker build --target operator -t mas-operator .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin mas-server --bin mas-operator \
    && mkdir -p /out && cp target/release/mas-server target/release/mas-operator /out/

FROM debian:bookworm-slim AS runtime-base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --uid 10001 --create-home app
USER 10001

FROM runtime-base AS operator
COPY --from=build /out/mas-operator /usr/local/bin/mas-operator
ENTRYPOINT ["/usr/local/bin/mas-operator"]
CMD ["run"]

FROM runtime-base AS server
WORKDIR /app
COPY --from=build /out/mas-server /usr/local/bin/mas-server
COPY server/assets /app/assets
ENV HOST=0.0.0.0 PORT=8000 ASSETS_DIR=/app/assets
EXPOSE 8000
# No curl in the image: the binary probes its own /api/health (exit 0 healthy, 1 not).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s CMD ["/usr/local/bin/mas-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mas-server"]
CMD ["serve"]
