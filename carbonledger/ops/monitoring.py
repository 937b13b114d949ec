"""What operations teams watch: the metric families every service exports, the
naming rules they must follow, the alert rules' references to them, and the
Prometheus scrape configuration of the local stack.

`carbonledger monitoring metrics|lint|config|start|stop|status`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from carbonledger.contracts import metrics as contract_metrics
from carbonledger.contracts.services import SERVICES
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.services.dedupe import metrics as dedupe_metrics
from carbonledger.services.ingest import metrics as ingest_metrics
from carbonledger.services.ledger import metrics as ledger_metrics
from carbonledger.services.quantify import metrics as quantify_metrics

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RUNBOOK_BASE_LABEL = "runbook_base"
RUNBOOK_TEMPLATE = "{{ $externalLabels.runbook_base }}/"
LOCAL_CONFIG = PROMETHEUS_DIR / "prometheus.local.yml"

# Importing these registers every metric the services export; they build nothing.
METRICS_MODULES = (
    contract_metrics,  # the runtime's stage, consumer and dead-letter metrics
    ingest_metrics,  # the stage's and the HTTP gateway's
    quantify_metrics,
    dedupe_metrics,
    ledger_metrics,  # the writer's, the publisher's and the API's
)


# Labels whose values are bounded by configuration (partners, behaviour types,
# provinces, partitions, reason codes), never by traffic. Subjects, event ids,
# accounts and districts are not among them.
BOUNDED_LABELS = frozenset(
    {
        "stage",
        "topic",
        "group",
        "partner",
        "winner_partner",
        "outcome",
        "reason",
        "behaviour_type",
        "activity_class",
        "province",
        "kind",
        "book",
        "partition",
        "status",
        "route",
        "method",
        "version",
        "python",
    }
)
# Units Prometheus names in base form; scaled ones are refused.
BASE_UNITS = ("seconds", "bytes", "grams", "records", "decisions", "postings", "ratio")
SCALED_UNITS = re.compile(
    r"_(milli|micro|nano|kilo|mega|giga)(seconds|grams|bytes)(_|$)"
    r"|_(ms|us|ns|kb|mb|gb|kg|mg|minutes|hours|days|tonnes|percent)(_|$)"
)
STANDARD_PREFIXES = ("process_", "python_")  # prometheus-client's own collectors
PREFIX = "carbon_"


@dataclass(frozen=True)
class Family:
    name: str  # as exposed, counters with their _total
    type: str  # counter, gauge, histogram, summary, info
    labels: tuple[str, ...]
    documentation: str

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names a query can use."""
        if self.type == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "count", "sum"))
        if self.type == "summary":
            return (self.name, f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


def exported_families() -> list[Family]:
    """Every metric family the services register, found by importing them."""
    from prometheus_client import REGISTRY
    from prometheus_client.metrics import MetricWrapperBase

    found = []
    for collector in list(REGISTRY._collector_to_names):  # no public iterator over collectors
        if isinstance(collector, MetricWrapperBase):
            name = collector._name + ("_total" if collector._type == "counter" else "")
            name += "_info" if collector._type == "info" else ""
            labels = tuple(collector._labelnames)
            found.append(Family(name, str(collector._type), labels, collector._documentation))
        else:
            for metric in collector.collect():
                name = metric.name + ("_total" if metric.type == "counter" else "")
                found.append(Family(name, metric.type, (), metric.documentation))
    return sorted(found, key=lambda f: f.name)


def naming_problems(families: Iterable[Family]) -> list[str]:
    """Where a family breaks the naming rules (docs/operations.md, "Metrics")."""
    problems: list[str] = []
    for f in families:
        if f.name.startswith(STANDARD_PREFIXES):
            continue
        problems.extend(f"{f.name}: {p}" for p in _family_problems(f))
    return problems


def _family_problems(f: Family) -> Iterator[str]:
    if not f.name.startswith(PREFIX):
        yield f"does not start with {PREFIX}"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", f.name):
        yield "is not snake_case"
    if SCALED_UNITS.search(f.name):
        yield f"uses a scaled unit; use one of {', '.join(BASE_UNITS)}"
    if f.type == "counter" and not f.name.endswith("_total"):
        yield "is a counter without _total"
    if f.type != "counter" and f.name.endswith("_total"):
        yield "ends with _total but is not a counter"
    if f.type in ("histogram", "summary") and not f.name.endswith(
        tuple(f"_{u}" for u in BASE_UNITS)
    ):
        yield f"is a {f.type} without a unit suffix ({', '.join(BASE_UNITS)})"
    if "latency" in f.name or "duration" in f.name:
        yield "names a time without _seconds (say what is timed, in seconds)"
    for label in f.labels:
        if label not in BOUNDED_LABELS:
            yield f"label {label!r} is not a known bounded label"
    if not f.documentation.strip():
        yield "has no help text"


# --- alert rules ---------------------------------------------------------------

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "and", "or", "unless", "offset"}
)
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class ExprRefs:
    metrics: frozenset[str]
    labels: frozenset[str]  # in by(...)/without(...)/on(...) and in {matchers}


def expression_refs(expr: str) -> ExprRefs:
    """The metric names and label names a PromQL expression refers to."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    labels: set[str] = set()
    for _, inside in _GROUPING.findall(text):
        labels.update(x.strip() for x in inside.split(",") if x.strip())
    for inside in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", inside))
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    names = {
        m.group(1)
        for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text)
        if m.group(1) not in _KEYWORDS and not re.fullmatch(r"[eE]\d*|inf|nan|Inf|NaN", m.group(1))
    }
    return ExprRefs(frozenset(names), frozenset(labels))


def all_rules(rules_dir: Path = RULES_DIR) -> list[dict[str, Any]]:
    """The alerting and the recording rules."""
    rules = []
    for path in sorted(rules_dir.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def alert_rules(rules_dir: Path = RULES_DIR) -> list[dict[str, Any]]:
    return [rule for rule in all_rules(rules_dir) if "alert" in rule]


# Series Prometheus itself attaches to every target, and the labels it adds.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
TARGET_LABELS = frozenset({"job", "instance", "le", "quantile", "service"})


def rule_problems(rules: Iterable[dict[str, Any]], families: Iterable[Family]) -> list[str]:
    """Alerts or panels that refer to a metric, or a label, no service exports."""
    families = list(families)
    by_series = {s: f for f in families for s in f.series}
    problems = []
    for rule in rules:
        refs = expression_refs(str(rule["expr"]))
        title = rule.get("alert") or rule.get("record") or rule["expr"]
        used = [by_series[m] for m in refs.metrics if m in by_series]
        for missing in sorted(refs.metrics - by_series.keys() - SCRAPE_SERIES):
            problems.append(f"{title}: no service exports {missing}")
        known = TARGET_LABELS | {label for f in used for label in f.labels}
        for label in sorted(refs.labels - known):
            problems.append(f"{title}: no metric it uses has the label {label!r}")
    return problems


# --- the local Prometheus --------------------------------------------------------


def scrape_config(
    settings: Settings, rules: str = "rules/*.yml", interval: str = "5s"
) -> dict[str, Any]:
    """Prometheus configuration for the local stack: one job per service, at the
    ports `carbonledger up` gives them (worker 0 of each)."""
    jobs = [
        {
            "job_name": f"carbon-{service.name}",
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{service.base_port + settings.port_offset}"],
                    "labels": {"service": service.name},
                }
            ],
        }
        for service in SERVICES.values()
    ]
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            # The alerts' runbook URLs are built on it (rules/carbonledger.rules.yml).
            "external_labels": {RUNBOOK_BASE_LABEL: settings.runbook_base_url},
        },
        "rule_files": [rules],
        "scrape_configs": jobs,
    }


def render(config: dict[str, Any]) -> str:
    header = (
        "# The local stack's scrape configuration, written by `carbonledger monitoring config`;\n"
        "# regenerate it rather than edit it (a test compares the two).\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def write_local_config(settings: Settings) -> Path:
    """The scrape configuration for this stack's ports, in its run folder."""
    path = settings.run_dir / "prometheus" / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(scrape_config(settings, rules=str(RULES_DIR / "*.yml"))))
    return path


def prometheus_env(settings: Settings, config: Path | None = None) -> dict[str, str]:
    env = {"CARBON_PROMETHEUS_PORT": str(settings.prometheus_port + settings.port_offset)}
    return env | ({"CARBON_PROMETHEUS_CONFIG": str(config)} if config else {})


# --- dashboards --------------------------------------------------------------------

DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"


def dashboard_queries(folder: Path = DASHBOARDS_DIR) -> list[dict[str, Any]]:
    """Every panel query of the Grafana dashboards, as {"record": title, "expr": ...},
    with template variables replaced by a plain value so they parse as PromQL."""
    import json

    found = []
    for path in sorted(folder.glob("*.json")):
        for panel in _panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    expr = re.sub(r"\$\{?(\w+)(:\w+)?\}?", "x", target["expr"])
                    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
                    found.append({"record": f"{path.name}: {panel.get('title')}", "expr": expr})
    return found


def _panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from _panels(panel)  # rows hold their panels
