# The single Bourse image: every component is `bourse <component>` (cli/bourse.ts), run by Node 24 directly
# from the TypeScript sources (type stripping; no build step). Runs as a non-root user and needs no writable
# root filesystem: the operator mounts an emptyDir at /tmp. It cannot be built on machines without Docker.
FROM node:24-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: see scripts/bootstrap (npm 11 drops other platforms' optional packages from the lock).
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY cli ./cli
COPY lib ./lib
COPY adapters ./adapters
COPY ledger ./ledger
COPY chain ./chain
COPY services ./services
COPY operator ./operator
COPY migrations ./migrations
USER node
ENTRYPOINT ["node", "cli/bourse.ts"]
CMD ["help"]
