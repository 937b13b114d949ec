# One image for every service: docker-compose.yml and deploy/k8s run it with a
# different command per service (python -m ..., uvicorn ..., carbonledger ...). Multi-stage: the build stage installs the project and its
# pinned dependencies (constraints.txt) into a virtualenv; the runtime stage copies
# only that virtualenv and the two registries, and runs as a non-root user.
#
# No HEALTHCHECK here on purpose: each service has its own port and probes
# (/healthz, /readyz), declared by docker-compose.yml and the Kubernetes manifests.
#
#   docker build -t carbonledger:0.1.0 .

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/carbonledger
ENV PATH=/opt/carbonledger/bin:$PATH
WORKDIR /src
# Dependencies first (pyproject.toml's list, pinned by constraints.txt), in their own
# layer, so that a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt
COPY carbonledger carbonledger
# The project itself, a regular (non-editable) install: console scripts
# `carbonledger`, `faust` and `uvicorn` land in /opt/carbonledger/bin, package data
# (migrations, methodology registry, regions) in site-packages.
RUN pip install --no-deps . \
    && carbonledger --help >/dev/null \
    && faust --version >/dev/null \
    && uvicorn --version >/dev/null

FROM python:3.11-slim
# A fixed numeric uid/gid, so Kubernetes can check runAsNonRoot and volumes can be
# prepared for it (fsGroup 10001).
RUN groupadd --system --gid 10001 carbon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/carbonledger --shell /usr/sbin/nologin carbon \
    && mkdir -p /var/lib/carbonledger \
    && chown 10001:10001 /var/lib/carbonledger
COPY --from=build /opt/carbonledger /opt/carbonledger
WORKDIR /app
# Read at start-up; operators replace them with a volume or a ConfigMap.
COPY deploy/partners.yaml deploy/partners.yaml
COPY carbonledger/services/quantify/registry carbonledger/services/quantify/registry
ENV PATH=/opt/carbonledger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CARBON_RUN_DIR=/var/lib/carbonledger \
    CARBON_PARTNERS_FILE=/app/deploy/partners.yaml \
    CARBON_METHODOLOGY_DIR=/app/carbonledger/services/quantify/registry
# CARBON_RUN_DIR holds faust's data folder: an emptyDir in Kubernetes. No VOLUME
# here, so the services do not each get an anonymous volume.
USER 10001:10001
CMD ["carbonledger", "--help"]
