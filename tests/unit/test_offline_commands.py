import json
import subprocess
import sys

from tests.factories import metro, raw


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )


def test_quantify_prints_one_result_per_line_including_rejections() -> None:
    good = raw(metro(id="q-1", data_distance_km="12.345"))
    outside = raw(metro(id="q-2", data_region="110105"))
    done = run("quantify", stdin=b"\n".join([good, b"not json", outside]))
    assert done.returncode == 0, done.stderr
    first, second, third = (json.loads(line) for line in done.stdout.splitlines())
    assert (first["id"], first["credited"], first["reduction_mg"]) == ("q-1", True, 576_511)
    assert first["methodology"] == {"id": "shenzhen-public-transport", "version": "1"}
    assert first["factors"][0]["value"] == "46.7"
    assert (second["credited"], second["reason"]) == (False, "not_json")
    assert (third["credited"], third["reason"]) == (False, "no_applicable_methodology")


def test_methodologies_list_and_show() -> None:
    listed = run("methodologies", "list")
    assert listed.returncode == 0
    assert b"spdb-2022@1" in listed.stdout and b"inactive" in listed.stdout
    assert b"superseded" in listed.stdout and b"partner:spdb" in listed.stdout
    shown = run("methodologies", "show", "online-meeting-2021")
    text, versions = shown.stdout.decode(), []
    while text.strip():  # one JSON document per version
        document, end = json.JSONDecoder().raw_decode(text.strip())
        versions.append(document)
        text = text.strip()[end:]
    assert [v["factors"][0]["value"] for v in versions] == ["27932", "27932"]
    assert [v["formula"] for v in versions] == ["per_unit", "per_event_share"]
    assert versions[1]["supersedes"] == ["1"]
    assert run("methodologies", "show", "nothing-like-it").returncode == 1
