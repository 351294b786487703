# syntax=docker/dockerfile:1
# qwen-imagine: a small production image. Build: docker build -t qwen-imagine .
# Run:   docker run --env-file .env -v qwen-data:/app/data -p 9464:9464 qwen-imagine
# Or the whole stack (Redis, two bot processes, optional Prometheus + Grafana): compose.yaml.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
# sqlite3 (under @keyv/sqlite) compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Runtime dependencies only: the image's own Node 24 runs the sources (type stripping).
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# /healthz and /metrics listen on every interface inside the container (0.0.0.0), so Docker's
# health check, Prometheus and `-p 9464:9464` reach them.
ENV NODE_ENV=production \
    STORAGE_URL=sqlite:///app/data/qwen-imagine.sqlite \
    METRICS_PORT=9464 \
    METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY commands ./commands
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 9464
# Healthy = /healthz answers 200: the Discord gateway is connected and storage answers (its JSON
# body says which part is down otherwise). Node itself probes it: slim images have no curl.
# start-period: logging in to Discord and opening storage; retries: a gateway reconnect (a few
# seconds) never makes the container unhealthy on its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9464)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Graceful stop: SIGTERM pauses jobs in progress; they resume on the next start (or, on Redis,
# in another process). The bot exits within 15 s; give it more than that before SIGKILL
# (docker stop -t 30, compose's stop_grace_period).
STOPSIGNAL SIGTERM
# The V8 memory flags of npm start (src/node-flags.ts): a thousand jobs in flight stay under
# 150 MB RSS (npm run bench); the NSFW classifier's model adds about 140 MB (NSFW_CLASSIFIER=off).
CMD ["node", "--max-semi-space-size=4", "--optimize-for-size", "src/main.ts"]
