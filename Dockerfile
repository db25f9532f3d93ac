# reinit images, for linux/amd64 and linux/arm64.
#
#   podman build -t reinit .                        # the drop-in: FROM scratch, /reinit only
#   podman build --target example -t reinit-example .   # + the example server, for k8s/
#   podman build --platform linux/arm64 -t reinit:arm64 .   # another architecture
#
# Both final stages copy from the `bin` stage. By default it compiles in the official Rust
# image, on the build machine's own architecture, cross-compiling for the target platform
# (scripts/build-static.sh --arch; aarch64 links with the toolchain's rust-lld, no emulation
# needed). --build-arg BUILD_FLAGS=--small gives the size-optimised build.
#
# On a machine that cannot pull the Rust image, build the static binaries first
# (scripts/build-static.sh --arch all --with-example) and pass --build-arg BIN=local to copy
# them from the build context: target/<x86_64|aarch64>-unknown-linux-musl/release/, or with
# --build-arg LOCAL_DIR=target/small the --small build's target/small/<arch>-…/release/.
#
# Users of the drop-in: COPY --from=<this image> /reinit /reinit

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG BIN=compiled
# Set by podman/buildah/docker from --platform (default: the build machine's): amd64, arm64.
ARG TARGETARCH

FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS compiled
ARG TARGETARCH
ARG BUILD_FLAGS=
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The workspace's other members (the benchmarks, the test fixtures): only their manifests,
# which cargo reads to load the workspace; nothing of theirs is built here.
COPY bench/Cargo.toml bench/Cargo.toml
COPY tests/fixtures/Cargo.toml tests/fixtures/Cargo.toml
COPY .cargo .cargo
COPY src src
COPY examples examples
COPY scripts scripts
RUN case "$TARGETARCH" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
      *) echo "unsupported TARGETARCH '$TARGETARCH' (amd64, arm64)" >&2; exit 1 ;; \
    esac && \
    scripts/build-static.sh --arch "$arch" $BUILD_FLAGS --with-example --out /out

# BIN=local: one stage per architecture (a COPY source cannot map amd64 to x86_64 itself).
FROM scratch AS local-amd64
ARG LOCAL_DIR=target
COPY ${LOCAL_DIR}/x86_64-unknown-linux-musl/release/reinit /out/reinit
COPY ${LOCAL_DIR}/x86_64-unknown-linux-musl/release/examples/config_server /out/config_server

FROM scratch AS local-arm64
ARG LOCAL_DIR=target
COPY ${LOCAL_DIR}/aarch64-unknown-linux-musl/release/reinit /out/reinit
COPY ${LOCAL_DIR}/aarch64-unknown-linux-musl/release/examples/config_server /out/config_server

FROM local-${TARGETARCH} AS local
# Not a no-op: see the `bin` stage.
LABEL org.opencontainers.image.title="reinit static binaries"

FROM ${BIN} AS bin
# Not a no-op: a stage that only renames another commits no image of its own, and buildah
# (podman 4.3 with --layers=false, buildah bud's default) then removes the shared intermediate
# image twice and fails with "identifier is not an image". The label gives the stage its own.
LABEL org.opencontainers.image.title="reinit static binaries"

FROM scratch AS example
COPY --from=bin /out/reinit /reinit
COPY --from=bin /out/config_server /config_server
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/reinit", "--"]
CMD ["/config_server", "--config", "/etc/app/app.conf"]

FROM scratch AS reinit
COPY --from=bin /out/reinit /reinit
USER 65532:65532
ENTRYPOINT ["/reinit"]
