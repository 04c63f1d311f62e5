# One image per function for Cloud Run, or the emulator:
#   docker build --build-arg PRODUCT=manage-teams -t manage-teams .
# PRODUCT is one of: manage-teams, manage-users, api-keys, upload-image, process-embedding, search,
# emulator.
ARG SWIFT_VERSION=6.3

FROM swift:${SWIFT_VERSION}-bookworm AS build
ARG PRODUCT=emulator
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev libvips-dev libopenblas-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --product "${PRODUCT}" --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/${PRODUCT}" /out/function \
    && mkdir -p /out/models && if [ -d models ]; then cp -r models/. /out/models/; fi

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-0 libvips42 libopenblas0 zlib1g libstdc++6 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/image-api --create-home function
COPY --from=build /out/function /usr/local/bin/function
# The CLIP model, when `make model` put one in ./models before the build (CLIP_MODEL_DIR's default
# ./models/clip-vit-base-patch32 then resolves here); without it the functions use the visual features.
COPY --from=build --chown=function /out/models /var/lib/image-api/models
USER function
WORKDIR /var/lib/image-api
ENV PORT=8080
# A container is reached from outside it: listen on every interface (the emulator would default to
# loopback in development; it then logs that its public management endpoints are exposed).
ENV HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/function"]
