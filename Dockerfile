# ivre-connector and ivre-sync in a small image without a shell (docs/container.md).
#
#   DOCKER_BUILDKIT=1 docker build -t ivre-connector .
#
# BuildKit is required (RUN --mount caches). The two bases are pulled from their
# registries elsewhere; on machines without a registry scripts/docker-bases makes local
# images with the same names. Both can be replaced:
#   --build-arg RUST_IMAGE=…      a Debian 12 (bookworm) Rust 1.95 image with gcc
#   --build-arg RUNTIME_IMAGE=…   a glibc 2.36 runtime with libgcc_s and CA certificates
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${RUST_IMAGE} AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_TERM_PROGRESS_WHEN=never
COPY . .
# The cargo registry and the target directory are BuildKit caches: a rebuild after a
# source change recompiles only the workspace crates. The binaries leave the cache
# through /out (a cache mount is not part of the image).
RUN --mount=type=cache,id=ivre-connector-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=ivre-connector-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=ivre-connector-target,target=/src/target \
    cargo build --locked --profile dist -p ivre-connector -p ivre-sync --bins \
 && mkdir -p /out/rootfs/usr/local/bin /out/rootfs/data \
 && cp target/dist/ivre-connector target/dist/ivre-sync /out/rootfs/usr/local/bin/ \
 && chown 65532:0 /out/rootfs/data \
 && chmod 0775 /out/rootfs/data

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://example.invalid/ivre-connector
LABEL org.opencontainers.image.title="ivre-connector" \
      org.opencontainers.image.description="OpenCTI internal-enrichment connector answering from a local snapshot of IVRE data (ivre-connector, ivre-sync)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="ivre-connector contributors"
# The binaries and /data in one copy of a tree: copying a directory by itself would
# create /data with mode 0755, dropping its mode. Any UID works (OpenShift's arbitrary
# UIDs run in group 0): /data belongs to 65532:0 with mode 0775. Nothing else is
# written: `run`, `enrich`, `lookup` and `index` work with a read-only root file system;
# only `demo` uses a temporary directory (/tmp).
COPY --from=build /out/rootfs/ /
COPY LICENSE /usr/share/doc/ivre-connector/LICENSE
ENV IVRE_DATA_DIR=/data \
    HOME=/tmp
WORKDIR /data
VOLUME ["/data"]
USER 65532:0
# The metrics/health port (CONNECTOR_METRICS_PORT, 9095 by default).
EXPOSE 9095
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["ivre-connector", "health"]
ENTRYPOINT ["ivre-connector"]
CMD ["run"]
