# reinit images.
#
#   podman build -t reinit .                        # the drop-in: FROM scratch, /reinit only
#   podman build --target example -t reinit-example .   # + the example server, for k8s/
#
# Both final stages copy from the `bin` stage. By default it compiles in the official Rust
# image; on a machine that cannot pull it, build the static binaries first
# (scripts/build-static.sh) and pass --build-arg BIN=local to copy them from the build context.
#
# Users of the drop-in: COPY --from=<this image> /reinit /reinit

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG BIN=compiled

FROM ${RUST_IMAGE} AS compiled
RUN rustup target add x86_64-unknown-linux-musl && rustup component add rust-src
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY examples examples
COPY scripts scripts
RUN scripts/build-static.sh --with-example && \
    mkdir -p /out && cp target/x86_64-unknown-linux-musl/release/reinit \
        target/x86_64-unknown-linux-musl/release/examples/config_server /out/

FROM scratch AS local
COPY target/x86_64-unknown-linux-musl/release/reinit /out/reinit
COPY target/x86_64-unknown-linux-musl/release/examples/config_server /out/config_server

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
