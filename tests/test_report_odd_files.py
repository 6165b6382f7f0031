"""ssrl-report on a folder that holds more than ssrl's runs (issue 25, cases 4 and 10)."""

from __future__ import annotations

import json
import logging

from ssrl.report import write_report
from ssrl.run.summary import write_summary


def odd_sweep(root):
    """A sweep folder: one failed run, a summary.json holding a list, an empty overrides.yaml."""
    write_summary(root / "seed=0", {"status": "failed", "error": "ValueError: x", "overrides": ["seed=0"]})
    (root / "listed").mkdir(parents=True)
    (root / "listed" / "summary.json").write_text(json.dumps([1, 2]))
    (root / "empty" / ".hydra").mkdir(parents=True)
    (root / "empty" / ".hydra" / "overrides.yaml").write_text("")
    return root


def test_report_skips_what_is_not_a_run_with_a_line(tmp_path, caplog):
    sweep = odd_sweep(tmp_path / "sweep")
    with caplog.at_level(logging.WARNING, logger="ssrl"):
        runs = write_report(sweep)
    assert [r.folder.name for r in runs] == ["seed=0"]
    assert "1 runs in 1 cells" in (sweep / "results.md").read_text()
    skipped = sorted(r.getMessage() for r in caplog.records)
    assert skipped == [
        f"ssrl-report: skipped {sweep / 'empty'}: {sweep / 'empty' / '.hydra' / 'overrides.yaml'} holds nothing, "
        "not a list of overrides",
        f"ssrl-report: skipped {sweep / 'listed'}: {sweep / 'listed' / 'summary.json'} holds list, not a run's summary",
    ]
