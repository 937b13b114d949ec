"""The benchmark's report: a table for people, JSON for machines, PNG charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def table(report: dict[str, Any]) -> str:
    latency = report["latency_seconds"]
    lines = [
        f"records sent        {report['records']:>12,}   over {report['send_seconds']} s "
        f"(offered {report['offered_records_per_second']:,.0f}/s)",
        f"end to end          {report['records_per_second']:>12,.0f} records/s   "
        f"first send to last posting: {report['seconds']} s",
        f"latency send->post  p50 {latency['p50']} s   p95 {latency['p95']} s   "
        f"p99 {latency['p99']} s   ({report['credited_events']:,} credited events)",
    ]
    if "relay" in report:
        relay = report["relay"]
        lines.append(
            f"relay ceiling       {relay['records_per_second']:>12,.0f} records/s   "
            f"pipeline / ceiling = {report['ratio_to_relay']:.3f}"
        )
    cpu, disk = report["cpu_ms_per_record"], report["storage"]
    lines += [
        f"CPU per record      {cpu['all']:.3f} ms, all processes "
        f"({cpu['platform']:.3f} ms without the load generator)",
        f"PostgreSQL          {disk['postgres_bytes_per_credited_activity']:>12,} bytes per "
        f"credited activity, {disk['postgres_kept_bytes_per_credited_activity']:,} without "
        f"the outbox queue ({disk['postgres_bytes'] / 2**20:,.1f} MB: "
        + ", ".join(f"{t} {b / 2**20:.1f}" for t, b in list(disk["postgres_tables"].items())[:4])
        + ")",
        f"Kafka               {disk['kafka_bytes_per_record']:>12,} bytes per record "
        f"({disk['kafka_bytes'] / 2**20:,.1f} MB over {len(disk['kafka_topics'])} topics)",
    ]
    lines.append(
        f"dedupe state        {report['dedupe']['mean_state_bytes_per_write']:,.0f} bytes per "
        f"person (mean stored), {report['dedupe']['people']:,} people"
    )
    lines += [
        "",
        f"{'process':<22}{'consumed/s':>12}{'CPU s':>9}{'CPU s/1k':>10}{'peak RSS MB':>13}",
    ]
    for name, f in report["processes"].items():
        lines.append(
            f"{name:<22}{f['consumed_per_second']:>12,.0f}{f['cpu_seconds']:>9.1f}"
            f"{f['cpu_seconds_per_1000']:>10.3f}{f['peak_rss_mb']:>13.1f}{f['restarts']:>10}"
        )
    lines.append("")
    lines.append(
        "books equal settle: yes"
        if report["correct"]
        else "books equal settle: NO\n  " + "\n  ".join(report["problems"])
    )
    return "\n".join(lines)


def plot(report: dict[str, Any], latencies: list[float], folder: Path) -> list[Path]:
    """Throughput (consumed per second per stage) and lag over time, and the latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, points in sorted(report["lag"].items()):
        if any(lag for _, lag in points):
            ax.plot([t for t, _ in points], [lag for _, lag in points], label=name)
    ax.set(xlabel="seconds since first send", ylabel="consumer lag (records)", title="Lag")
    ax.legend(fontsize="small")
    written.append(_save(fig, folder / "lag.png"))
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, points in sorted(report.get("throughput", {}).items()):
        ax.plot([t for t, _ in points], [r for _, r in points], label=name)
    ax.set(xlabel="seconds since first send", ylabel="records/s consumed", title="Throughput")
    ax.legend(fontsize="small")
    written.append(_save(fig, folder / "throughput.png"))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.hist(latencies, bins=60)
    ax.set(xlabel="seconds from send to first credit posting", ylabel="events", title="Latency")
    written.append(_save(fig, folder / "latency.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
