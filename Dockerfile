# preflight: a static, rustls-only binary on a minimal image that holds the CA roots it needs.
#   docker build -t preflight .
#   docker run --rm preflight check --profile konnect --set region=eu --set cp_prefix=abc123
# For CI runners that need a shell in the image (GitLab), build on distroless's busybox variant:
#   docker build --build-arg BASE=gcr.io/distroless/static-debian12:debug-nonroot -t preflight:ci .
ARG BASE=gcr.io/distroless/static-debian12:nonroot

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The same script the test (tests/preflight/image.rs) builds and runs from an empty root.
RUN .ci/build-static /preflight

# distroless/static: no shell, no libc; CA certificates, /etc/passwd with `nonroot` (65532).
FROM ${BASE}
COPY --from=build /preflight /usr/local/bin/preflight
USER 65532:65532
ENTRYPOINT ["preflight"]
CMD ["--help"]
