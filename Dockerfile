# A static, non-root image of nsoffload.
#   make image            (docker or podman, whichever answers; see the README to load it into kind)
#   docker build -t nsoffload:0.1.0 .
# The binary is linked statically against musl (ring needs only a C compiler), so the final
# image holds nothing but the binary; it talks to the API server with the in-cluster CA.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin nsoffload \
 && strip target/release/nsoffload

FROM scratch
COPY --from=build /src/target/release/nsoffload /nsoffload
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/nsoffload"]
CMD ["serve"]
