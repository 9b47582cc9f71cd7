# Worker and API (and the local stand-ins fly-local / binance-replay, which docker-compose.yml runs
# from the same image). Build from the repository root: docker build -t cloud-execution .
# 1. production dependencies only
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# 2. the workflow code bundled once, so workers start without webpack
FROM node:20-slim AS bundle
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
RUN node_modules/.bin/tsx scripts/build-workflow-bundle.ts dist/workflow-bundle.js

# 3. the runtime image: non-root, no dev dependencies, no tests
FROM node:20-slim
ENV NODE_ENV=production \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=bundle /app/dist ./dist
COPY package.json tsconfig.json ./
COPY common ./common
COPY store ./store
COPY supabase/migrations ./supabase/migrations
COPY supabase/local ./supabase/local
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY api ./api
COPY client ./client
COPY dev ./dev
COPY machine-runtime ./machine-runtime
COPY scripts ./scripts
RUN find . -path ./node_modules -prune -o -name '*.test.ts' -print | xargs rm -f && mkdir -p /app/.data && chown node /app/.data
USER node
EXPOSE 3000
CMD ["node_modules/.bin/tsx", "api/server.ts"]
