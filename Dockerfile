# syntax=docker/dockerfile:1
#
# hawser in a minimal image: one static executable, the CA bundle, a numeric
# non-root user, no shell, no package manager, no libc.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t hawser .
#
# The build stage runs scripts/build-static, the same script the tests run outside
# Docker (tests/packaging.rs puts its output in an empty root with only what this
# image holds, plus the /etc/hosts and /etc/resolv.conf every container runtime
# mounts, and fetches over TLS by host name).

# Debian 12's glibc (2.36) matters: since 2.34 the `files` and `dns` name service
# modules live inside libc, so the statically linked binary resolves names without
# loading any libnss_*.so at run time. Keep the builder on glibc >= 2.34.
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The image already has what build-static needs: libc6-dev (libc.a for
# +crt-static), binutils (readelf, to check the result is static), a C compiler
# (ring). Dependencies are fetched first so source edits keep that layer cached.
# (cargo fetch only parses the manifest; the sources need not be there yet.)
COPY Cargo.toml Cargo.lock build.rs ./
RUN cargo fetch --locked --target x86_64-unknown-linux-gnu
COPY agent agent
COPY scripts/build-static scripts/build-static
RUN bin="$(HAWSER_BUILD_OFFLINE=1 scripts/build-static | tail -n 1)" \
 && install -D -m 0755 "$bin" /out/hawser \
 && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && install -d -m 1777 /out/tmp

# scratch rather than a distroless base: the binary needs nothing else, and the
# empty-root test then checks exactly this image's contents.
FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/hawser-dev/hawser
LABEL org.opencontainers.image.title="hawser" \
      org.opencontainers.image.description="A small GitOps pull agent for Kubernetes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Mozilla's roots are also compiled into hawser's Git client; the bundle serves the
# Kubernetes client outside a pod and anything pointed at SSL_CERT_FILE.
COPY --from=build /out/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# A writable /tmp for runs without a mounted one (the Deployment mounts an emptyDir
# there because its root filesystem is read-only).
COPY --from=build /out/tmp /tmp
COPY --from=build /out/hawser /hawser
# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd;
# 65532 is distroless' "nonroot", matching packaging/kubernetes.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/hawser"]
CMD ["run"]
