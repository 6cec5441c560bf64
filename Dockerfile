# rc-migrate image: the CLI and the sandbox. Build: docker build -t rc-migrate .
FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY config ./config
COPY src ./src
# the build copies src/redis/scripts/*.lua into dist/ with this
COPY scripts/copy-assets.mjs ./scripts/
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
COPY examples ./examples
ENTRYPOINT ["node", "dist/cli.js"]
