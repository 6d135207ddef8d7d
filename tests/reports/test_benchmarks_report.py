"""`python -m reports.benchmarks`: how paired ratios, intervals and A/A turn into target verdicts.

The input is a small pytest-benchmark JSON written here by hand in the shape
tests/benchmarks/bench_composite.py writes, so the arithmetic can be checked exactly.
"""

import json
import math

import pytest

from reports.benchmarks import main, render_markdown, summarize


def _paired(ratio, ci=None, cpu_mean_s=1e-3, with_gc=None):
    return {
        "ratio_cpu_nogc_mean": ratio,
        "ci95_cpu_nogc_mean": ci,
        "ratio_cpu_mean": ratio if with_gc is None else with_gc,
        "ci95_cpu_mean": ci if with_gc is None else None,
        "ratio_cpu_median": ratio,
        "ratio_wall_mean": ratio,
        "cpu_mean_s": cpu_mean_s,
        "cpu_median_s": cpu_mean_s,
    }


def _bench(impl, paired, mode="function", n_vars=512, n_groups=2, clip=None, cpu_mean_s=1e-3, own_wall=True):
    info = {
        "impl": impl,
        "mode": mode,
        "n_vars": n_vars,
        "n_groups": n_groups,
        "global_clipnorm": clip,
        "cpu_mean_s": cpu_mean_s,
        "cpu_median_s": cpu_mean_s,
        "paired": paired,
        "graph_ops": {"Const": 1},
    }
    if own_wall:
        info.update(wall_median_s=cpu_mean_s, wall_min_s=cpu_mean_s, wall_mean_s=cpu_mean_s,
                    wall_stddev_s=0.0, wall_iqr_s=0.0)
    # pytest-benchmark's own statistics time a whole round (the step and its baselines).
    round_s = 3 * cpu_mean_s
    stats = {"median": round_s, "min": round_s, "mean": round_s, "stddev": 0.0, "iqr": 0.0, "rounds": 8}
    return {"name": f"test_step[{mode}-{impl}]", "extra_info": info, "stats": stats}


def _raw(benchmarks):
    return {"benchmarks": benchmarks, "composite_bench": {"versions": {}, "not_measured": []}}


def _verdict(report, target_prefix):
    (found,) = [v for v in report["verdicts"] if v["target"].startswith(target_prefix)]
    return found


@pytest.mark.parametrize(
    "ratio,ci,aa,met,within_noise",
    [
        (0.99, [0.97, 1.01], 1.00, True, True),  # met
        (1.02, [0.99, 1.05], 1.00, False, True),  # missed, but the interval reaches 1.00
        (1.02, [1.01, 1.03], 1.03, False, True),  # interval above, but the A/A is further from 1.0
        (1.02, [1.01, 1.03], 1.005, False, False),  # missed beyond what the run resolves
    ],
)
def test_reference_against_tfrs_is_judged_on_its_own_interval_and_the_aa(ratio, ci, aa, met, within_noise):
    report = summarize(_raw([
        _bench("direct", {"reference": _paired(1.0)}),
        _bench("reference", {"direct": _paired(1.0, [0.98, 1.02]), "tfrs": _paired(ratio, ci)}),
        _bench("tfrs", {"direct": _paired(0.9, [0.85, 0.95])}),
        _bench("direct_again", {"direct": _paired(aa, [aa - 0.01, aa + 0.01])}),
    ]))
    verdict = _verdict(report, "reference never slower than TFRS")
    # Measured in the same rounds, not derived as (reference/direct) / (tfrs/direct) = 1.0 / 0.9.
    assert verdict["ratio"] == ratio
    assert verdict["ci95"] == ci
    assert (verdict["met"], verdict["within_noise"]) == (met, within_noise)
    assert report["summary"]["targets_missed_beyond_noise"] == (0 if within_noise else 1)
    shown = f"{ci[0]:.3f}, {ci[1]:.3f}"
    assert shown in render_markdown(report)


def test_targets_are_judged_outside_the_garbage_collector():
    # A full collection that happened to land in the reference's rounds: 1.5x with it, 0.99x without.
    report = summarize(_raw([
        _bench("direct", {"reference": _paired(1.0)}, mode="eager"),
        _bench("reference", {"direct": _paired(0.99, [0.98, 1.0], with_gc=1.5)}, mode="eager"),
    ]))
    verdict = _verdict(report, "reference within 1.10x of direct eagerly")
    assert (verdict["ratio"], verdict["met"]) == (0.99, True)
    (case,) = report["ratios"]
    assert case["ratios"]["reference/direct"]["paired_cpu"] == 1.5  # Still reported beside it.


def test_ratios_without_a_measured_pairing_are_chained_and_have_no_interval():
    report = summarize(_raw([
        _bench("direct", {"reference": _paired(1.0)}),
        _bench("keras3_direct", {"direct": _paired(1.5, [1.4, 1.6])}),
        _bench("keras3_multi", {"keras3_direct": _paired(1.2, [1.1, 1.3])}),
    ]))
    (case,) = report["ratios"]
    chained = case["ratios"]["keras3_multi/direct"]
    assert math.isclose(chained["paired_cpu_nogc"], 1.2 * 1.5)
    assert chained["paired_cpu_nogc_ci95"] is None
    assert case["ratios"]["keras3_multi/keras3_direct"]["paired_cpu_nogc_ci95"] == [1.1, 1.3]


def test_own_step_times_are_read_from_extra_info_and_older_runs_fall_back_to_the_stats():
    new = summarize(_raw([_bench("direct", {}, cpu_mean_s=2e-3)]))
    old = summarize(_raw([_bench("direct", {}, cpu_mean_s=2e-3, own_wall=False)]))
    assert new["measurements"][0]["wall_median_s"] == 2e-3  # The step alone, not the round.
    assert old["measurements"][0]["wall_median_s"] == 3 * 2e-3  # pytest-benchmark's statistic.


def test_the_command_writes_both_files(tmp_path, capsys):
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(_raw([
        _bench("direct", {"reference": _paired(1.0)}, mode="eager"),
        _bench("reference", {"direct": _paired(1.2, [1.15, 1.25])}, mode="eager"),
    ])))
    assert main([str(source), "--out-dir", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "benchmarks.json").read_text())
    eager = _verdict(report, "reference within 1.10x of direct eagerly")
    assert (eager["met"], eager["within_noise"]) == (False, False)
    assert "missed: eager n_vars=512 n_groups=2 clip=-: 1.200 [1.150, 1.250]" in (
        tmp_path / "out" / "benchmarks.md"
    ).read_text()
    assert "0/1 target checks met (1 missed beyond what the run resolves)" in capsys.readouterr().out


def test_isolation_rows_compare_each_mode_with_the_in_process_run_of_its_device():
    def run(device, mode, wall, status="passed", examples=50):
        return {"extra_info": {"suite": "isolation", "device": device, "mode": mode, "command": "c", "wall_s": wall,
                               "verdicts": {"a": status}, "examples": {"a": examples}}}

    raw = {"benchmarks": [run("cpu", "in_process", 50.0), run("cpu", "worker", 54.0),
                          run("cpu", "2_workers", 30.0, status="failed"), run("replicas:2", "worker", 60.0)]}
    from reports.benchmarks import suite_cost

    rows = {(r["device"], r["mode"]): r for r in suite_cost(raw)["isolation"]}
    assert rows["cpu", "worker"]["ratio_to_in_process"] == pytest.approx(1.08)
    assert rows["cpu", "worker"]["same_verdicts"] is True and rows["cpu", "worker"]["target"] == 1.10
    assert rows["cpu", "2_workers"]["same_verdicts"] is False  # A changed verdict shows, whatever the speed.
    assert rows["replicas:2", "worker"]["ratio_to_in_process"] is None  # No in-process run to compare with.


def test_projection_for_more_workers_shares_the_checks_but_not_the_start_up():
    from reports.benchmarks import isolation_cost, projected_wall

    one = {"wall_s": 100.0, "checks_s": 90.0, "longest_check_s": 4.0}
    assert projected_wall(one, 16) == 10.0 + 90.0 / 16
    assert projected_wall({**one, "longest_check_s": 30.0}, 16) == 40.0  # One check cannot be split.
    assert projected_wall({"wall_s": 1.0}, 16) is None
    runs = [dict(one, device="cpu", mode="worker", profile="thorough", command="w", verdicts={}, examples={}),
            dict(one, device="cpu", mode="2_workers", profile="thorough", command="2", verdicts={}, examples={},
                 wall_s=60.0)]
    rows = {r["mode"]: r for r in isolation_cost(runs)}
    assert rows["2_workers"]["ratio_to_in_process"] == 0.6 and rows["2_workers"]["base_mode"] == "worker"
    assert rows["worker"]["projected_16_workers_s"] == 10.0 + 90.0 / 16 and rows["worker"]["ratio_to_in_process"] is None
