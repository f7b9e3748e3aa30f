# One image for every FlowPilot service; the command picks the service (see docker-compose.yml):
#   docker build --build-arg FLOWPILOT_COMMIT=$(git rev-parse HEAD) -t flowpilot .
#   docker run --rm flowpilot check examples/pilot.yaml
#
# Two stages. `build` has the compilers that native modules (better-sqlite3, classic-level,
# serialport) fall back to when no prebuilt binary matches, and installs the production
# modules. The runtime stage has Node, those modules and the sources, no compiler, and runs as
# the unprivileged `node` user (uid 1000). There is no build step: tsx runs the TypeScript.

FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Every workspace's manifest before `npm ci`, so that the modules are installed again only when
# one of them changes (test/deploy-files.test.ts checks that none is missing).
COPY package.json package-lock.json ./
COPY packages/async/package.json packages/async/
COPY packages/schema/package.json packages/schema/
COPY packages/influx/package.json packages/influx/
COPY packages/store/package.json packages/store/
COPY packages/metrics/package.json packages/metrics/
COPY packages/i18n/package.json packages/i18n/
COPY packages/report/package.json packages/report/
COPY apps/flowpilot/package.json apps/flowpilot/
COPY services/broker/package.json services/broker/
COPY services/ingest/package.json services/ingest/
COPY services/gateway/package.json services/gateway/
COPY services/api/package.json services/api/
COPY simulators/flowmeter/package.json simulators/flowmeter/
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# openssl: `flowpilot certs` makes the site's certificates with it (SPEC section 8); fonts-nanum:
# the Hangul font of the Korean PDF report (the other languages use the DejaVu fonts shipped in
# packages/report/fonts). Nothing else.
RUN apt-get update && apt-get install -y --no-install-recommends openssl fonts-nanum && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The installed modules (the root's and any a workspace keeps of its own), then the sources.
# Both stay root's: the services read their code and cannot change it.
COPY --from=build /app ./
COPY . .
# The data dir, owned by the user the services run as and private to it (SPEC section 8). Made
# before VOLUME, so a new named volume starts with this owner and mode.
RUN mkdir -p /data && chown node:node /data && chmod 0700 /data
# The commit a PDF report names (docker build --build-arg FLOWPILOT_COMMIT=$(git rev-parse HEAD) .).
ARG FLOWPILOT_COMMIT=unknown
ENV FLOWPILOT_DATA_DIR=/data FLOWPILOT_LISTEN_HOST=0.0.0.0 FLOWPILOT_COMMIT=${FLOWPILOT_COMMIT}
VOLUME /data
USER node
# MQTT, MQTT over TLS, the API, the /metrics of a standalone broker and of a standalone ingest.
EXPOSE 1883 8883 8080 9464 9465
# The API's /healthz (over HTTPS when it serves HTTPS); docker-compose.yml gives every other
# service a check of its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "require(process.env.FLOWPILOT_HTTP_TLS_CERT ? 'https' : 'http').get({ host: '127.0.0.1', port: process.env.FLOWPILOT_HTTP_PORT || 8080, path: '/healthz', rejectUnauthorized: false, timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
ENTRYPOINT ["node", "apps/flowpilot/bin/flowpilot.js"]
