# syntax=docker/dockerfile:1
#
# RAGnos Vault container image.
#
#   docker build -t ragnos-vault .
#   docker run --rm -p 4000:4000 -v ragnos-data:/data \
#     -e VAULT_MASTER_KEY="$(openssl rand -base64 32)" ragnos-vault
#
# The build step is the same command CI runs:
#   cargo build --release --locked --bin ragnos-vault

############################ build ############################
FROM rust:1-bookworm AS builder

# cmake is only a fallback for native crypto crates (aws-lc-sys) should one enter the tree;
# the bundled SQLite builds with the compiler already in the image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The registry and target directories are BuildKit cache mounts, so a rebuild after a source
# change recompiles only this crate. The binary is copied out of the cache mount before the
# step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ragnos-vault \
 && install -D -m 0755 target/release/ragnos-vault /out/ragnos-vault

############################ runtime ############################
FROM debian:bookworm-slim AS runtime

# ca-certificates for outgoing TLS; curl only for HEALTHCHECK.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ragnos \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin ragnos \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0700 /data

COPY --from=builder /out/ragnos-vault /usr/local/bin/ragnos-vault

# In a container the server must listen on all interfaces; the SQLite database and a generated
# dev master key (when VAULT_MASTER_KEY is unset) live in /data.
ENV RAGNOS_LISTEN=0.0.0.0:4000 \
    RAGNOS_DATA_DIR=/data

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4000

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:4000/healthz"]

ENTRYPOINT ["ragnos-vault"]
CMD ["server"]
