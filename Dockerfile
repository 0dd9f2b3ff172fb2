# preflight: a static, rustls-only binary on a minimal image with the CA roots it needs.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/preflight /preflight

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /preflight /usr/local/bin/preflight
USER nonroot
ENTRYPOINT ["preflight"]
