"""`xenmem simulate`: the JSON format in and out, and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenmem.cli.main import main
from xenmem.cli.scenario import ScenarioError, parse_scenario
from xenmem.xen.simulator import Ideal, NoDriver

EXAMPLE = Path(__file__).parents[2] / "examples" / "floor-beside-stuck.json"


def simulate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["simulate", str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_example_runs_and_reports_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = simulate(EXAMPLE, capsys)
    assert status == 0
    steps = json.loads(out)["steps"]
    assert [s["op"] for s in steps] == ["free", "consume", "balance", "free_range"]
    assert all(s["outcome"] == "success" for s in steps)
    assert set(steps[0]) == {"op", "outcome", "params", "elapsed", "free_kib", "domains"}
    assert set(steps[0]["domains"][0]) == {"domid", "target", "actual", "maxmem", "active"}
    assert steps[0]["free_kib"] >= 1000
    assert steps[1]["free_kib"] == steps[0]["free_kib"] - 500
    assert steps[2]["free_kib"] <= 32
    assert 300 <= steps[3]["params"][0] <= 600


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_a_failed_step_stops_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["steps"] = [{"op": "free", "kib": 10**6}, {"op": "consume", "kib": 1}]
    status, out, _ = simulate(write(tmp_path, document), capsys)
    steps = json.loads(out)["steps"]
    assert status == 0 and len(steps) == 1
    assert steps[0]["outcome"] in {"Cannot_free_this_much_memory", "Domains_refused_to_cooperate"}


def test_consuming_more_than_is_free_is_a_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["steps"] = [{"op": "consume", "kib": 1}]
    _, out, _ = simulate(write(tmp_path, document), capsys)
    assert json.loads(out)["steps"][0]["outcome"] == "fault"
    assert json.loads(out)["steps"][0]["params"] == ["xen", 1, 0]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "is not JSON"),
        ([], "scenario: expected an object"),
        ({"host_free_kib": 0, "domains": [], "steps": []} | {"host_free_kib": -1}, "host_free_kib"),
        ({"host_free_kib": 0, "domains": [{}], "steps": []}, "domains[0]: missing field 'domid'"),
        ({"host_free_kib": 0, "domains": [], "steps": [{"op": "melt"}]}, "steps[0].op"),
        ({"host_free_kib": 0, "domains": [], "steps": [{"op": "free", "kib": True}]}, "kib"),
        ({"host_free_kib": 0, "domains": [], "steps": [], "options": {"fast": True}}, "fast"),
        ({"host_free_kib": 0, "domains": "x", "steps": []}, "must be lists"),
    ],
)
def test_malformed_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: object, message: str
) -> None:
    status, out, err = simulate(write(tmp_path, document), capsys)
    assert status == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_bad_drivers_and_duplicates_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["domains"][1]["driver"] = {"kind": "intermittent", "rate": 1, "interval": 0}
    _, _, err = simulate(write(tmp_path, document), capsys)
    assert "domains[1].driver.interval" in err
    document["domains"][1]["driver"] = {"kind": "lazy"}
    _, _, err = simulate(write(tmp_path, document), capsys)
    assert "domains[1].driver.kind" in err
    document["domains"][1] = document["domains"][0]
    _, _, err = simulate(write(tmp_path, document), capsys)
    assert "unique" in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = simulate(tmp_path / "absent.json", capsys)
    assert status == 2 and "cannot read" in err


def test_a_domain_that_cannot_balloon_runs_no_driver() -> None:
    def parsed_driver(can_balloon: bool, kind: str) -> object:
        spec = {
            "domid": 1,
            "can_balloon": can_balloon,
            "dynamic_min": 0,
            "target": 0,
            "dynamic_max": 0,
            "actual": 0,
            "maxmem": 0,
            "driver": {"kind": kind, "rate": 100},
        }
        document = {"host_free_kib": 0, "domains": [spec], "steps": []}
        return parse_scenario(document).domains[0].driver

    assert parsed_driver(False, "ideal") == NoDriver()
    assert parsed_driver(False, "none") == NoDriver()
    assert parsed_driver(True, "ideal") == Ideal(rate_kib_s=100)
    with pytest.raises(ScenarioError, match=r"domains\[0\]\.driver\.kind"):
        parsed_driver(True, "none")


@pytest.mark.parametrize(("compensate", "outcome"), [(True, "success"), (False, "fault")])
def test_deficit_compensation_is_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compensate: bool, outcome: str
) -> None:
    # A guest at 256 MiB whose dynamic_min was raised to 512 MiB, 400000 KiB free; its
    # driver is fast enough to take its whole target in one tick, before a re-aim.
    document = {
        "host_free_kib": 400_000,
        "options": {"deficit_compensation": compensate, "target_host_free_kib": 73_728},
        "domains": [
            {
                "domid": 1,
                "can_balloon": True,
                "dynamic_min": 524_288,
                "target": 262_144,
                "dynamic_max": 5_242_880,
                "actual": 262_144,
                "maxmem": 5_242_880,
                "inaccuracy": 4,
                "driver": {"kind": "ideal", "rate": 10_000_000},
            }
        ],
        "steps": [{"op": "balance", "target_kib": 73_728, "tolerance_kib": 512}],
    }
    _, out, _ = simulate(write(tmp_path, document), capsys)
    assert json.loads(out)["steps"][0]["outcome"] == outcome
