# Worker and API (and the local stand-ins fly-local / binance-replay, which docker-compose.yml runs
# from the same image). Build from the repository root: docker build -t cloud-execution .
# 1. production dependencies only
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# 2. `npm run build`: the code compiled to dist/ (plain JavaScript), the dashboard and workflow bundles
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
RUN node_modules/.bin/tsx scripts/build.ts

# 3. the image: non-root, production dependencies and built files only (no TypeScript, no tsx, no tests)
FROM node:20-slim
ENV NODE_ENV=production \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /app/.data && chown node /app/.data
USER node
EXPOSE 3000
# The commit the image was built from (scripts/deploy-images.sh passes --build-arg GIT_SHA=<sha>); last,
# so a new commit does not invalidate the cached layers above.
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.revision=$GIT_SHA
# The worker's build id under Worker Versioning (WORKER_BUILD_ID defaults to it: worker/versioning.ts).
ENV GIT_COMMIT=$GIT_SHA
CMD ["node", "dist/api/server.js"]
