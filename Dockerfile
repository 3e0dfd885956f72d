# syntax=docker/dockerfile:1
# One image with both binaries: /usr/local/bin/lvs-controller (the default command, run as a
# non-root user) and /usr/local/bin/lvs-agent (the chart's DaemonSet runs it as root with only
# NET_ADMIN and NET_RAW). The agent drives nftables through the `nft` binary, hence nftables in
# the runtime image; kmod is for the chart's optional module-loading init container (modprobe).
#
#   docker build -t lvs-operator:dev .
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package lvs-agent --package lvs-controller \
 && install -D --mode=0755 --target-directory=/out target/release/lvs-agent target/release/lvs-controller

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install --yes --no-install-recommends nftables kmod ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# The nonroot user of distroless images; the controller needs nothing more.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lvs-controller"]
