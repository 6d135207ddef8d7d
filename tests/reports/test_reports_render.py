"""The HTML and Markdown renderings: structure, statuses, escaping, self-containment, determinism."""

import re

import pytest

from reports import schema
from reports.render import (GATING_MARKERS, LEGEND, MISSING, VERDICT_LEGEND, gating_line, render_html,
                            render_markdown, runs_of, verdict_line)
from synthetic_reports import check, make_report, parse_html, tfrs_report, with_checks

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_MESSAGE = '"onmouseover=alert(1) x="'
HOSTILE_EXAMPLE = "</pre><script>alert(2)</script><pre>"
HOSTILE_REASON = "'><img src=x onerror=alert(3)> | ``` *bold* [link](http://evil.example)"
HOSTILE_DEVICE = 'cpu" onclick="alert(4) | x'


def three_runs():
    """reference on cpu (all pass), tfrs on cpu (every kind of result), reference on gpu (an error)."""
    gpu = with_checks(
        make_report(device="gpu"),
        {"test_iter.py::test_iterations_advance_once": {"status": schema.ERROR, "message": "CUDA unavailable"}},
    )
    return [make_report(), tfrs_report(), gpu]


def matrix_of(page):
    root, errors = parse_html(page)
    assert errors == []
    return root, root.find("table", "matrix")


def test_html_matrix_has_one_row_per_requirement_and_one_column_per_run():
    reports = three_runs()
    _, table = matrix_of(render_html(reports))
    header = table.find("thead").find("tr").elements("th")
    assert [th.text() for th in header] == ["Requirement", "reference · cpu", "reference · gpu", "tfrs · cpu"]
    assert [(th.attrs["data-implementation"], th.attrs["data-device"]) for th in header[1:]] == [
        ("reference", "cpu"),
        ("reference", "gpu"),
        ("tfrs", "cpu"),
    ]
    rows = table.find("tbody").elements("tr")
    expected_ids = set().union(*(r["requirements"] for r in reports))
    assert [row.attrs["data-requirement"] for row in rows] == [
        "ATOM-1", "CLIP-1", "CONF-1", "CTOR-1", "CTOR-2", "ITER-1",
        "ROUTE-1", "ROUTE-4", "ROUTE-8", "ROUTE-9", "SLOT-1",
    ]
    assert {row.attrs["data-requirement"] for row in rows} == expected_ids
    for row in rows:
        assert [th.text() for th in row.elements("th")] == [row.attrs["data-requirement"]]
        assert len(row.elements("td")) == 3


def test_html_cells_are_classed_by_the_requirement_verdict_in_that_run():
    reports = three_runs()
    by_column = {"reference · cpu": reports[0], "reference · gpu": reports[2], "tfrs · cpu": reports[1]}
    _, table = matrix_of(render_html(reports))
    labels = [th.text() for th in table.find("thead").find("tr").elements("th")[1:]]
    seen, markers = set(), {}
    for row in table.find("tbody").elements("tr"):
        rid = row.attrs["data-requirement"]
        for label, cell in zip(labels, row.elements("td")):
            entry = by_column[label]["requirements"].get(rid)
            expected = MISSING if entry is None else entry["verdict"]
            assert {c for c in cell.classes if c.startswith("verdict-")} == {f"verdict-{expected}"}, (rid, label)
            assert not {c for c in cell.classes if c.startswith("status-")}
            assert cell.attrs["data-verdict"] == expected
            assert cell.attrs["data-status"] == ((entry or {}).get("status") or "none")
            summary = cell.find("summary").text()
            assert summary.startswith(VERDICT_LEGEND[expected][0]), (rid, label)
            if summary != VERDICT_LEGEND[expected][0]:
                markers[(rid, label)] = summary[len(VERDICT_LEGEND[expected][0]):]
            seen.add(expected)
    # The fixture exercises every verdict, so a mix-up between any two would show.
    assert seen == set(VERDICT_LEGEND)
    # Gating markers follow the verdict only where the gating status says more than it.
    assert markers == {
        ("ITER-1", "reference · gpu"): "💥",  # untested: its check errored
        ("ITER-1", "tfrs · cpu"): "🟡",  # deviates, excused by the expectations file
        ("CONF-1", "tfrs · cpu"): "🔵",  # complies, through a stale expectations entry
        ("ROUTE-8", "tfrs · cpu"): "💥",
    }


def test_html_cell_explains_itself_on_hover_and_on_click():
    _, table = matrix_of(render_html([tfrs_report()]))
    rows = {row.attrs["data-requirement"]: row for row in table.find("tbody").elements("tr")}
    failed = rows["ROUTE-9"].find("td")
    assert "failed" in failed.attrs["title"]
    assert "variables differ after step 2" in failed.attrs["title"]
    assert "steps=[[(0, array([1.0]))], [(1, None)]]" in failed.attrs["title"]
    details = failed.find("details")
    pre_texts = [pre.text() for pre in details.iter("pre")]
    assert "AssertionError: variables differ after step 2\n  max abs diff 0.125" in pre_texts
    assert "steps=[[(0, array([1.0]))], [(1, None)]]" in pre_texts
    assert "python -m conformance --impl tfrs -k test_central_property" in details.text()

    assert failed.attrs["title"].startswith("ROUTE-9 · tfrs · cpu: deviates (gating status: failed)\n"
                                            "test_routing.py::test_central_property: AssertionError: variables differ")
    expected_failure = rows["ITER-1"].find("td")
    assert expected_failure.attrs["title"].startswith("ITER-1 · tfrs · cpu: deviates (gating status: expected failure)")
    assert "TFRS: iterations is the first sub-optimizer's counter" in expected_failure.attrs["title"]
    blocked = rows["ROUTE-1"].find("td")
    assert blocked.find("p", "reason").text().startswith("test_routing.py::test_identity_routing blocked by ROUTE-9: needs steps")
    assert "Blocked by" in blocked.find("details").text()
    not_applicable = rows["CLIP-1"].find("td")
    assert "TFRS has no clip settings (CTOR-1)." in not_applicable.find("details").text()
    no_check = rows["SLOT-1"].find("td")
    assert "no check cites it in this run" in no_check.attrs["title"]
    avoided = rows["ATOM-1"].find("td")
    assert "cases without absent groups (ROUTE-9 deviates)" in avoided.attrs["title"]
    assert "TFRS" not in rows["ATOM-1"].find("th").attrs["title"]
    assert "Every error of a step is raised" in rows["ATOM-1"].find("th").attrs["title"]


def hostile_reports():
    bad = with_checks(
        make_report(name=HOSTILE_NAME, device=HOSTILE_DEVICE, expectations=HOSTILE_REASON),
        {
            "test_routing.py::test_central_property": {
                "status": schema.FAILED,
                "message": HOSTILE_MESSAGE,
                "example": HOSTILE_EXAMPLE,
                "reproduce": f"python -m conformance --impl '{HOSTILE_NAME}'",
            },
            "test_iter.py::test_iterations_advance_once": {"status": schema.EXPECTED_FAILURE, "reason": HOSTILE_REASON},
        },
    )
    bad["requirements"]["ROUTE-9"]["text"] = HOSTILE_EXAMPLE
    bad["frameworks"] = {HOSTILE_NAME: HOSTILE_MESSAGE}
    bad["command"] = HOSTILE_MESSAGE
    return [bad, make_report()]


def test_html_escapes_every_string_from_a_report():
    page = render_html(hostile_reports())
    # Nothing from the data became markup: no script, image, or event-handler attribute anywhere.
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    root, errors = parse_html(page)
    assert errors == []
    elements = list(root.iter())
    assert not [el.tag for el in elements if el.tag in {"script", "img", "iframe", "object", "embed"}]
    assert not [(el.tag, a) for el in elements for a in el.attrs if a.startswith("on") or a == "src"]
    # ...and it was escaped, not dropped: the parser gives back the exact strings, in text and attributes.
    header = root.find("table", "matrix").find("thead").find("tr").elements("th")
    hostile_column = [th for th in header if th.attrs.get("data-implementation") == HOSTILE_NAME]
    assert len(hostile_column) == 1
    assert hostile_column[0].attrs["data-device"] == HOSTILE_DEVICE
    assert hostile_column[0].text() == f"{HOSTILE_NAME} · {HOSTILE_DEVICE}"
    titles = "\n".join(el.attrs.get("title") or "" for el in elements)
    for text in (HOSTILE_MESSAGE, HOSTILE_EXAMPLE, HOSTILE_REASON, HOSTILE_NAME):
        assert text in titles
    pres = [pre.text() for pre in root.iter("pre")]
    assert HOSTILE_MESSAGE in pres and HOSTILE_EXAMPLE in pres
    body_text = root.text()
    for text in (HOSTILE_REASON, HOSTILE_DEVICE, f"python -m conformance --impl '{HOSTILE_NAME}'"):
        assert text in body_text


def test_html_has_no_external_resource():
    page = render_html(three_runs() + hostile_reports()[:1])
    assert not re.search(r"""\b(src|href|action|srcset|poster|data)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert not re.search(r"@import|url\s*\(|<link\b|<script\b|<iframe\b|<object\b", page, re.I)
    root, _ = parse_html(page)
    assert not [el for el in root.iter() if "src" in el.attrs or "href" in el.attrs]
    assert [el.tag for el in root.iter("style")] == ["style"]


def test_renderings_are_deterministic_and_independent_of_input_order():
    reports = three_runs()
    assert render_html(reports) == render_html(list(reversed(reports)))
    assert render_markdown(reports) == render_markdown(list(reversed(reports)))
    dates = set(re.findall(r"\b20\d\d-\d\d-\d\d", render_html(reports) + render_markdown(reports)))
    assert dates == set()  # not even the reports' own `created`: it changes with every run


def test_renderings_leave_out_what_changes_between_runs_with_the_same_verdicts():
    def run(created, duration, address, took, tmp, root):
        report = with_checks(tfrs_report(), {
            "test_routing.py::test_central_property": dict(
                message=f"AssertionError: <Var object at {address}> differs after {took}\n"
                        f"  File \"{root}/conformance/tests/test_routing.py\", line 40\n  wrote {tmp}/ckpt-1",
                example=f"steps=[<Var at {address}>]"),
            "test_iter.py::test_iterations_advance_once": dict(reason=f"TFRS; logged {created}"),
        })
        report["created"], report["duration_s"] = created, duration
        return report

    first = run("2026-11-24T12:00:00+00:00", 31.5, "0x7f3a5c2b1d60", "12.5ms", "/tmp/pytest-of-a/pytest-1/t0", "/work/main")
    second = run("2026-12-01T08:30:59+00:00", 29.25, "0x7fbb00112233", "3 s", "/tmp/tmpq8x_z1", "/home/ci/checkout")
    assert render_markdown([first]) == render_markdown([second])
    assert render_html([first]) == render_html([second])
    text = render_markdown([first])
    assert ("AssertionError: <Var object at 0x…> differs after <duration>\n"
            '  File "conformance/tests/test_routing.py", line 40\n  wrote <tmp>') in text
    assert "TFRS; logged &lt;timestamp&gt;" in text
    assert "31.5" not in text and "2026-11-24" not in text
    central = next(c for c in first["checks"] if c["id"] == "test_routing.py::test_central_property")
    assert central["message"].startswith("AssertionError: <Var object at 0x7f3a5c2b1d60>")  # input unchanged


def test_runs_sharing_implementation_and_device_are_told_apart_by_profile():
    reports = [make_report(profile="ci"), make_report(profile="full")]
    _, table = matrix_of(render_html(reports))
    labels = [th.text() for th in table.find("thead").find("tr").elements("th")[1:]]
    assert labels == ["reference · cpu · ci", "reference · cpu · full"]
    with pytest.raises(ValueError, match="Two reports for implementation 'reference' on device 'cpu' with profile 'ci'"):
        render_html([make_report(), make_report()])


@pytest.mark.parametrize("render", [render_html, render_markdown])
def test_invalid_reports_are_refused_with_the_reason(render):
    report = make_report()
    report["schema_version"] = 3
    with pytest.raises(ValueError, match=r"Report #1: Unsupported report schema_version 3"):
        render([make_report(name="other"), report])
    report = make_report()
    report["requirements"]["ROUTE-9"]["status"] = "flaky"
    with pytest.raises(ValueError, match="[Rr]equirement 'ROUTE-9' has unknown status 'flaky'"):
        render([report])


# --------------------------------------------------------------------------- Markdown


def md_table_after(markdown, line):
    """The rows (lists of cell strings) of the first table after the line `line`."""
    lines = markdown.splitlines()
    start = lines.index(line) + 1
    while not lines[start].startswith("|"):
        start += 1
    rows = []
    for text in lines[start:]:
        if not text.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", text)[1:-1]])
    return rows[0], rows[2:]  # header, body (without the alignment row)


def test_markdown_summary_table_counts_checks_by_area_and_status():
    report = tfrs_report()
    markdown = render_markdown([report, make_report()])
    header, rows = md_table_after(markdown, "Checks by area and status (tfrs · cpu):")
    assert header == ["Area", "✅ passed", "❌ failed", "💥 error", "🟡 expected failure", "🔵 unexpected pass",
                      "⛔ blocked", "➖ not applicable", "Total"]
    table = {row[0]: [int(x.strip("*")) for x in row[1:]] for row in rows}
    assert table == {
        "atomicity": [1, 0, 0, 0, 0, 0, 0, 1],
        "clipping": [0, 0, 0, 0, 0, 0, 1, 1],
        "config": [0, 0, 0, 0, 1, 0, 0, 1],
        "construction": [2, 0, 0, 0, 0, 0, 0, 2],
        "iterations": [0, 0, 0, 1, 0, 0, 0, 1],
        "routing": [1, 1, 1, 0, 0, 1, 0, 4],
        "**Total**": [4, 1, 1, 1, 1, 1, 1, 10],
    }
    order = [schema.PASSED, schema.FAILED, schema.ERROR, schema.EXPECTED_FAILURE, schema.UNEXPECTED_PASS,
             schema.BLOCKED, schema.NOT_APPLICABLE]
    assert table["**Total**"][:-1] == [report["summary"][s] for s in order]
    _, rows = md_table_after(markdown, "Checks by area and status (reference · cpu):")
    assert rows[-1] == ["**Total**", "**10**", "**0**", "**0**", "**0**", "**0**", "**0**", "**0**", "**10**"]


def test_markdown_leads_with_the_verdicts_and_shows_gating_after():
    markdown = render_markdown(three_runs())
    assert markdown.startswith(
        "# Composite optimizer conformance\n\n## Verdicts\n\n"
        "- **reference · cpu:** complies with 10\n"
        "- **reference · gpu:** complies with 9, untested 1\n"
        "- **tfrs · cpu:** complies with 5, deviates on 2 (ITER-1, ROUTE-9), blocked 1 (ROUTE-1 by ROUTE-9), "
        "not applicable 1, untested 2\n"
    )
    gating = markdown.index("**Gating:** 2 of 3 runs failing")
    assert markdown.index("## Verdicts") < markdown.index("- **tfrs · cpu:** complies with 5") < gating < markdown.index("## Runs")
    assert ("- reference · cpu: passes (no expectations file)\n"
            "- reference · gpu: FAILING: 1 error\n"
            "- tfrs · cpu: FAILING: 1 unexpected failure, 1 error; 1 unexpected pass (stale expectations entries to remove)\n"
            ) in markdown[gating:]
    # In each run's header too, verdicts first, gating second.
    run = markdown[markdown.index("### tfrs · cpu"):]
    assert run.index("- **Verdicts:** complies with 5, deviates on 2") < run.index("- **Gating:** FAILING: 1 unexpected failure")
    assert "runs pass" not in markdown[:gating]


def test_verdict_and_gating_lines():
    runs = {run.label: run for run in runs_of(three_runs())}
    assert verdict_line(runs["tfrs · cpu"]) == (
        "tfrs · cpu: complies with 5, deviates on 2 (ITER-1, ROUTE-9), blocked 1 (ROUTE-1 by ROUTE-9), "
        "not applicable 1, untested 2"
    )
    assert gating_line(runs["reference · cpu"]) == "passes (no expectations file)"
    # An expected failure deviates but passes the gate: the two lines say different things.
    excused = runs_of([with_checks(make_report(expectations="e.toml"), {
        "test_iter.py::test_iterations_advance_once": {"status": schema.EXPECTED_FAILURE, "reason": "known"}})])[0]
    assert verdict_line(excused) == "reference · cpu: complies with 9, deviates on 1 (ITER-1)"
    assert gating_line(excused) == "passes under its expectations"
    blocked = runs_of([make_report([check("t.py::a", "ITER-1", schema.BLOCKED, blocked_by=["ROUTE-7", "ROUTE-4"]),
                                    check("t.py::b", "ROUTE-4", schema.FAILED)])])[0]
    assert verdict_line(blocked) == (
        "reference · cpu: complies with 0, deviates on 1 (ROUTE-4), blocked 1 (ITER-1 by ROUTE-4 and ROUTE-7)")
    assert gating_line(blocked) == "FAILING: 1 failed check"


def test_html_leads_with_the_verdicts_and_shows_gating_after():
    page = render_html(three_runs())
    root, errors = parse_html(page)
    assert errors == []
    assert [h.text() for h in root.iter("h2")][:2] == ["Verdicts", "Runs"]
    verdicts = [li.text() for li in root.find("ul", "verdicts").elements("li")]
    assert verdicts[2] == ("tfrs · cpu: complies with 5, deviates on 2 (ITER-1, ROUTE-9), blocked 1 (ROUTE-1 by ROUTE-9), "
                           "not applicable 1, untested 2")
    assert page.index('<ul class="verdicts">') < page.index('<p class="gating">') < page.index("<h2>Runs</h2>")
    assert root.find("p", "gating").text() == "Gating: 2 of 3 runs failing (a failed or errored check that no expectations entry excuses)."
    assert [li.text() for li in root.find("ul", "gating").elements("li")][0] == "reference · cpu: passes (no expectations file)"
    rows = {tr.find("th").text(): tr for tr in root.find("table", "runs").find("tbody").elements("tr")}
    assert list(rows)[-2:] == ["Verdicts", "Gating"]


def test_markdown_header_and_matrix():
    reports = three_runs()
    markdown = render_markdown(reports)
    for label in ("reference · cpu", "reference · gpu", "tfrs · cpu"):
        assert f"### {label}" in markdown
    assert "- **Spec version:** 1.0" in markdown and "- **Profile:** ci" in markdown
    header, rows = md_table_after(markdown, "## Requirements matrix")
    assert header == ["Requirement", "Scope", "reference · cpu", "reference · gpu", "tfrs · cpu"]
    matrix = {row[0].strip("*"): row[2:] for row in rows}
    assert len(rows) == len(matrix) == 11
    assert matrix["ROUTE-9"] == ["✅", "✅", "❌"]
    assert matrix["ITER-1"] == ["✅", "∅💥", "❌🟡"]
    assert matrix["CLIP-1"] == ["✅", "✅", "➖"]
    assert matrix["ROUTE-1"] == ["✅", "✅", "⛔"]
    assert matrix["CONF-1"] == ["✅", "✅", "✅🔵"]
    assert matrix["SLOT-1"] == ["—", "—", "∅"]
    legend = markdown[markdown.index("## Requirements matrix"):]
    assert "Verdicts: ✅ complies · ❌ deviates · ⛔ blocked · ➖ not applicable · ∅ untested · — missing" in legend
    assert all(marker in legend.split("\n| ")[0] for marker, _ in GATING_MARKERS.values())
    reasons = markdown[markdown.index("<details><summary>Verdicts of tfrs · cpu"):]
    assert "- ❌ **ROUTE-9** deviates: test_routing.py::test_central_property: AssertionError: variables differ after step 2" in reasons
    assert "- ∅ **SLOT-1** untested: no check cites it in this run" in reasons


def test_blocked_checks_are_listed_with_what_blocked_them():
    markdown = render_markdown([tfrs_report()])
    blocked = markdown[markdown.index("## Blocked checks"):markdown.index("## Unexpected passes")]
    assert ("- ⛔ tfrs · cpu: `test_routing.py::test_identity_routing` (ROUTE-1) blocked by ROUTE-9: needs steps in which"
            in blocked)
    assert "## Blocked checks" not in render_markdown([make_report()])
    root, _ = parse_html(render_html([tfrs_report()]))
    items = root.find("ul", "blocked").text()
    assert "test_routing.py::test_identity_routing" in items and "Blocked byROUTE-9" in items


def test_schema_1_reports_render_through_their_derived_verdicts():
    v1 = tfrs_report(device="gpu", schema_version=1)
    markdown = render_markdown([v1, tfrs_report()])
    assert ("- **tfrs · gpu:** complies with 6, deviates on 2 (ITER-1, ROUTE-9), not applicable 1, untested 2"
            in markdown)
    header, rows = md_table_after(markdown, "## Requirements matrix")
    matrix = {row[0].strip("*"): row[2:] for row in rows}
    assert header[2:] == ["tfrs · cpu", "tfrs · gpu"]
    assert matrix["ITER-1"] == ["❌🟡", "❌🟡"]
    assert matrix["ROUTE-1"] == ["⛔", "✅"]
    assert matrix["SLOT-1"] == ["∅", "∅"]  # a v1 report's listed requirement without check: untested
    _, table = matrix_of(render_html([v1]))
    cells = {row.attrs["data-requirement"]: row.find("td") for row in table.find("tbody").elements("tr")}
    assert cells["ROUTE-8"].attrs["data-verdict"] == "untested" and cells["ROUTE-8"].attrs["data-status"] == "error"


def test_markdown_lists_failures_with_reason_example_and_reproduce_command():
    report = with_checks(tfrs_report(), {"test_routing.py::test_central_property": {"reason": "known since 0.7"}})
    markdown = render_markdown([report])
    failures = markdown[markdown.index("## Failures"):markdown.index("## Unexpected passes")]
    assert failures.index("### ❌ ROUTE-9 · tfrs · cpu") < failures.index("### 💥 ROUTE-8 · tfrs · cpu")
    assert "- **Check:** `test_routing.py::test_central_property` (failed)" in failures
    assert "- **Reason:** known since 0.7" in failures
    assert "Minimal failing example:\n\n```text\nsteps=[[(0, array([1.0]))], [(1, None)]]\n```" in failures
    assert "- **Reproduce:** `python -m conformance --impl tfrs -k test_central_property`" in failures
    assert "- **Check:** `test_routing.py::test_sparse_routing` (error)" in failures
    # Expected failures and not-applicable checks are not failures, and say why they are excused.
    assert "test_iterations_advance_once" not in failures
    assert "`test_iter.py::test_iterations_advance_once` (ITER-1): TFRS: iterations is the first" in markdown
    assert "`test_conf.py::test_get_config_json` (CONF-1), expectations file `adapters/expectations/tfrs.toml`" in markdown


def test_markdown_all_passing():
    markdown = render_markdown([make_report()])
    assert "**Gating:** the run passes under the expectations given (no failed or errored check)." in markdown
    assert "**Gating:** all 2 runs pass" in render_markdown([make_report(), make_report(device="gpu")])
    assert "None: no check failed or errored." in markdown


def outside_code(markdown):
    """The Markdown with fenced blocks and inline code removed: what a renderer would parse."""
    text = re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", markdown, flags=re.S | re.M)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", text)


def test_markdown_escapes_report_strings():
    reports = hostile_reports()
    markdown = render_markdown(reports)
    prose = outside_code(markdown)
    assert "<script" not in prose and "<img" not in prose
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in prose
    # A pipe in a name cannot add a column; the header still has one column per run.
    header, rows = md_table_after(markdown, "## Requirements matrix")
    assert len(header) == 4 and all(len(row) == 4 for row in rows)
    # Free text sits verbatim in a code block fenced by more backticks than it contains.
    fenced = with_checks(make_report(), {"test_routing.py::test_central_property": {"status": schema.FAILED, "message": "a\n```\nb ````"}})
    assert "`````text\na\n```\nb ````\n`````" in render_markdown([fenced])


def test_markdown_notes_a_summary_that_disagrees_with_the_checks():
    report = make_report()
    report["summary"][schema.PASSED] = 99
    assert "> **Warning:** The report's summary {" in render_markdown([report])
    root, _ = parse_html(render_html([report]))
    assert "the counts shown are the checks'" in root.find("p", "warning").text()


def test_uncovered_requirement_is_not_shown_as_not_applicable():
    report = make_report(uncovered=["SLOT-1"])
    assert report["requirements"]["SLOT-1"]["status"] is None
    assert report["requirements"]["SLOT-1"]["verdict"] == "untested"
    v1 = make_report(uncovered=["SLOT-1"], device="gpu", schema_version=1)
    assert v1["requirements"]["SLOT-1"]["status"] == schema.NOT_APPLICABLE  # what a schema-1 report claims
    _, table = matrix_of(render_html([report, v1]))
    rows = {row.attrs["data-requirement"]: row for row in table.find("tbody").elements("tr")}
    for cell in rows["SLOT-1"].elements("td"):
        assert cell.attrs["data-verdict"] == "untested"
        assert "verdict-not_applicable" not in cell.classes


def test_check_helper_builds_valid_reports():
    report = make_report([check("t.py::x", "ROUTE-1", schema.FAILED)])
    schema.validate(report)
    assert report["requirements"]["ROUTE-1"]["status"] == schema.FAILED


def test_an_untested_requirement_has_no_status():
    with pytest.raises(ValueError, match="no check cites has no status"):
        schema.requirement_status([])
    with pytest.raises(ValueError, match="Unknown check status"):
        schema.requirement_status(["passed", "skipped"])
    assert schema.requirement_status([schema.NOT_APPLICABLE]) == schema.NOT_APPLICABLE
    assert schema.requirement_status([schema.NOT_APPLICABLE, schema.PASSED]) == schema.PASSED
    assert schema.requirement_status([schema.PASSED, schema.EXPECTED_FAILURE, schema.FAILED]) == schema.FAILED
