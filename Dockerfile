# One image for every service (multi-stage, runs as a non-root user).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY carbonledger carbonledger
COPY services services
RUN pip wheel --no-cache-dir -c constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /var/lib/carbonledger carbon \
    && mkdir -p /var/lib/carbonledger && chown carbon /var/lib/carbonledger
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY deploy/partners.yaml deploy/partners.yaml
COPY services/quantify/registry services/quantify/registry
ENV CARBON_PARTNERS_FILE=/app/deploy/partners.yaml \
    CARBON_METHODOLOGY_DIR=/app/services/quantify/registry
USER carbon
