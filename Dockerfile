# One image for every FlowPilot service; the command picks the service (see docker-compose.yml).
FROM node:20-bookworm-slim
# better-sqlite3 compiles its SQLite engine when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
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
COPY . .
# The commit a PDF report names (docker build --build-arg FLOWPILOT_COMMIT=$(git rev-parse HEAD) .).
ARG FLOWPILOT_COMMIT=unknown
ENV FLOWPILOT_DATA_DIR=/data FLOWPILOT_LISTEN_HOST=0.0.0.0 FLOWPILOT_COMMIT=${FLOWPILOT_COMMIT}
VOLUME /data
ENTRYPOINT ["node", "apps/flowpilot/bin/flowpilot.js"]
