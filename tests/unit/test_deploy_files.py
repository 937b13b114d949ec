"""docker-compose.yml, the Dockerfile and deploy/k8s, checked without Docker or a
cluster (neither exists on the development machine): well-formed, every service,
image, module, file and environment variable they name exists, and every
long-running service has health checks."""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbonledger.contracts import access
from carbonledger.contracts.services import SERVICES
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.services.dedupe.config import DedupeSettings
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.quantify.config import QuantifySettings

COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
OUR_SERVICES = set(SERVICES)  # ingest, gateway, quantify, dedupe, ledger-writer, ...
# Set by the process runner rather than read as settings fields.
RUNTIME_VARS = {"CARBON_WEB_PORT", "CARBON_WORKER_ID", "CARBON_PG_DIR"}


def known_variables() -> set[str]:
    fields = {
        f"CARBON_{name.upper()}"
        for cls in (Settings, IngestSettings, QuantifySettings, DedupeSettings, LedgerSettings)
        for name in cls.model_fields
    }
    principals = access.principals(["x"], "g")
    secrets = {access.secret_env(p.name) for p in principals if not p.name.startswith("partner-")}
    return fields | secrets | RUNTIME_VARS | {access.secret_env(access.ADMIN)}


def _is_known(variable: str, known: set[str]) -> bool:
    return variable in known or variable.startswith("CARBON_KAFKA_SECRET_PARTNER_")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def module_exists(module: str) -> bool:
    return importlib.util.find_spec(module.split(":")[0]) is not None


def command_modules(command: list[str] | str) -> list[str]:
    """The Python modules a container command runs (faust -A, python -m, uvicorn)."""
    argv = command if isinstance(command, list) else command.split()
    found = []
    for flag, value in itertools.pairwise(argv):
        if flag in ("-A", "-m"):
            found.append(value)
    if argv and argv[0] == "uvicorn":
        found.append(argv[1])
    return found


# --- docker compose ------------------------------------------------------------------


def test_compose_runs_every_service_beside_kafka_postgres_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert OUR_SERVICES | {"kafka", "postgres", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")


def test_compose_long_running_services_have_healthchecks_and_wait_for_healthy_deps() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if service.get("restart") == "no" or name == "init":
            continue
        assert "healthcheck" in service, name
        assert service["healthcheck"]["test"], name
        for dep, condition in (service.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            assert condition["condition"] in (
                "service_healthy",
                "service_completed_successfully",
            ), (name, dep)


def test_compose_service_commands_run_modules_that_exist() -> None:
    services = compose()["services"]
    for name in OUR_SERVICES:
        modules = command_modules(services[name]["command"])
        assert modules, name
        for module in modules:
            assert module_exists(module), (name, module)


def test_compose_secrets_are_required_never_defaulted() -> None:
    text = COMPOSE.read_text()
    for expression in re.findall(r"\$\{([^}]*)\}", text):
        name = re.split(r"[:?-]", expression, maxsplit=1)[0]
        if re.search("SECRET|PASSWORD", name):
            assert ":?" in expression, f"${{{expression}}} must be required with :?"


def test_compose_sets_only_variables_the_services_read() -> None:
    known = known_variables()
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        for variable in environment:
            if variable.startswith("CARBON_"):
                assert _is_known(variable, known), (name, variable)


def test_compose_mounts_files_that_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)


def test_compose_prometheus_scrapes_each_service_at_its_compose_port() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    for name, service in SERVICES.items():
        assert targets[f"carbon-{name}"] == [f"{name}:{service.base_port}"], name


def test_the_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert ":latest" not in text


# --- kubernetes ------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == kind]


def workloads() -> list[dict[str, Any]]:
    return of_kind("Deployment") + of_kind("StatefulSet")


def test_kustomization_lists_every_manifest_and_only_those() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed <= present
    assert present - listed <= {"secrets.example.yaml"}


def test_every_service_has_a_workload_with_probes_resources_and_labels() -> None:
    by_name = {w["metadata"]["name"]: w for w in workloads()}
    for name, service in SERVICES.items():
        workload = by_name[name]
        labels = workload["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "carbonledger", name
        assert labels["app.kubernetes.io/name"], name
        template = workload["spec"]["template"]
        assert set(workload["spec"]["selector"]["matchLabels"].items()) <= set(
            template["metadata"]["labels"].items()
        ), name
        container = template["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        ports = {p["containerPort"] for p in container.get("ports", [])}
        assert service.base_port in ports, name
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        for module in command_modules([*container.get("command", []), *container.get("args", [])]):
            assert module_exists(module), (name, module)


def test_kubernetes_sets_only_variables_the_services_read() -> None:
    known = known_variables()
    for doc in of_kind("ConfigMap"):
        if doc["metadata"]["name"] == "alertmanager":
            continue  # a file for Alertmanager, not environment variables
        for variable in doc.get("data", {}):
            assert _is_known(variable, known), variable
    for workload in workloads() + of_kind("Job"):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"].startswith("CARBON_"):
                    assert _is_known(env["name"], known), env["name"]


def test_autoscalers_target_workloads_and_stay_within_the_partitions() -> None:
    names = {w["metadata"]["name"] for w in workloads()}
    scalers = of_kind("HorizontalPodAutoscaler")
    assert scalers
    partitions = Settings().topic_partitions
    for hpa in scalers:
        assert hpa["spec"]["scaleTargetRef"]["name"] in names
        assert hpa["spec"]["maxReplicas"] <= partitions
        metric = hpa["spec"]["metrics"][0]
        assert "carbon_consumer_lag_records" in yaml.safe_dump(metric)


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: Path(p).name)
def test_every_manifest_is_well_formed(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and path.name != "kustomization.yaml":
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path


def test_the_exit_codes_compose_names_are_the_ones_the_workers_use() -> None:
    from carbonledger.runtime.batching import EXIT_BATCH_FAILED

    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    named = {int(n) for n in re.findall(r"exits? on purpose \(([0-9]+)", text)}
    assert named == {EXIT_BATCH_FAILED}


def test_every_kafka_workload_mounts_the_ca_the_configmap_names() -> None:
    [config] = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "carbonledger"]
    assert config["data"]["CARBON_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    ca_dir = str(Path(config["data"]["CARBON_KAFKA_SSL_CAFILE"]).parent)
    workloads = of_kind("Deployment") + of_kind("Job")
    kafka_workloads = [
        w for w in workloads if w["metadata"]["name"] not in ("ledger-api", "alertmanager")
    ]
    assert len(kafka_workloads) >= 7
    for workload in kafka_workloads:
        pod = workload["spec"]["template"]["spec"]
        [container] = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        name = workload["metadata"]["name"]
        assert ca_dir in mounts, f"{name} does not mount the Kafka CA"
        assert volumes[mounts[ca_dir]]["configMap"]["name"] == "carbonledger-kafka-ca"


def test_k8s_and_compose_run_the_one_alertmanager_configuration() -> None:
    source = (ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    [config] = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "alertmanager"]
    assert config["data"]["alertmanager.yml"] == source
    volumes = compose()["services"]["alertmanager"]["volumes"]
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in volumes
    prometheus = yaml.safe_load(
        (ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text()
    )
    [targets] = [a["static_configs"][0]["targets"] for a in prometheus["alerting"]["alertmanagers"]]
    assert targets == ["alertmanager:9093"]
    assert prometheus["global"]["external_labels"]["runbook_base"].startswith("https://")
