"""scripts/gpu_check.py never rots: its --smoke mode runs every part (environment, estimators in bf16,
training throughput of ssrl and the bare loop for JMI, SDMI and SDMI-EMA, batched views, an end-to-end
ssrl-train run stopped by SIGTERM and resumed) at tiny sizes on the CPU, through the code a GPU runs."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest


def gpu_check():
    """scripts/gpu_check.py as a module."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resume_comparison_ignores_only_the_wall_clock():
    """The smoke's resumed history differed from the uninterrupted one's only in the MI probe's seconds
    (mi_probe_s: 2.66 against 4.60 at step 0): the comparison leaves those out, and nothing else."""
    compare = gpu_check().compare
    entry = {"epoch": 0, "step": 0, "mi": {"dv": 0.1}, "mi_probe": {"dv": 0.02, "infonce": 0.04}, "mi_probe_s": 2.66}
    reference = {"status": "completed", "steps": 20, "epochs": 2, "probe_acc": 0.3, "knn_acc": 0.2}
    reference |= {"mi": {"dv": 0.1}, "history": [entry, {"epoch": 2, "step": 20, "mi": {"dv": 0.2}}]}
    slower = copy.deepcopy(reference)
    slower["history"][0]["mi_probe_s"] = 4.60
    assert compare(reference, slower, exact=True)["identical"]
    probe_changed = copy.deepcopy(slower)
    probe_changed["history"][0]["mi_probe"]["dv"] = 0.03
    probe_dropped = copy.deepcopy(slower)
    del probe_dropped["history"][0]["mi_probe"]
    repeated = copy.deepcopy(slower)
    repeated["history"].insert(1, repeated["history"][0])
    for resumed in (probe_changed, probe_dropped, repeated):
        result = compare(reference, resumed, exact=True)
        assert not result["history_equal"] and not result["identical"] and not result["ok"]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # it ran past 900 s on 2 cores shared with four other jobs
def test_gpu_check_smoke_runs_every_part(tmp_path, repo_root):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "gpu_check.py"), "--smoke", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    parts = results["parts"]
    expected = {"environment", "estimators", "data", "views", "end_to_end", "image_folder"}
    expected |= {f"training {p}" for p in ("jmi", "sdmi", "sdmi_ema")}
    assert set(parts) == expected
    assert parts["image_folder"]["skipped"].startswith("no CUDA device")  # nvJPEG needs one
    assert all(part["ok"] for name, part in parts.items() if name != "image_folder")
    assert parts["environment"]["value"]["ssrl_requirements_unmet"] == []
    for paradigm in ("jmi", "sdmi", "sdmi_ema"):
        case = parts[f"training {paradigm}"]["value"]
        assert case["ssrl_img_s"] > 0 and case["bare_img_s"] > 0
        assert case["epoch_with_val_s"] > case["val_s"] > 0 and case["val_images"] > 0
        assert 0 < case["input_wait_share"] < 1  # on the CPU the host clock sees the loop's own work
    assert parts["estimators"]["value"]["worst"] <= parts["estimators"]["value"]["tolerance"]
    e2e = parts["end_to_end"]["value"]
    assert e2e["status"] == "completed" and e2e["loss_finite"] and e2e["tensorboard_losses"] > 0
    assert e2e["sigterm_exit"] == 143 and "SIGTERM" in e2e["stopped"]
    assert e2e["resume"]["identical"]  # on the CPU the resumed run equals the uninterrupted one exactly
    table = (out / "table.md").read_text()
    assert "| jmi | False |" in table and "end_to_end | ok" in table and "image_folder | skipped" in table


def test_a_part_past_its_cap_keeps_its_figures_and_the_results_are_written_after_each_part(tmp_path):
    import time

    module = gpu_check()
    check = module.Check(tmp_path, smoke=True, sizes={}, budget=30)

    def slow(partial, deadline):
        partial["first"] = 1.0
        for _ in range(500):  # 5 s: far past its cap
            time.sleep(0.01)

    started = time.time()
    check.part("slow", slow, cap=0.3)
    assert time.time() - started < 5
    written = json.loads((tmp_path / "results.json").read_text())["parts"]["slow"]
    assert written["error"] == "stopped at its cap of 0.3 s" and written["value"] == {"first": 1.0}
    assert not written["ok"] and "slow | failed" in (tmp_path / "table.md").read_text()
    check.part("quick", lambda partial, deadline: {"x": deadline > time.perf_counter()}, cap=10)
    assert json.loads((tmp_path / "results.json").read_text())["parts"]["quick"] == {
        "value": {"x": True},
        "ok": True,
        "wall_s": pytest.approx(0, abs=1),
    }
    check.budget = 0  # spent: the next part does not start
    check.part("late", lambda partial, deadline: pytest.fail("ran"), cap=10)
    assert "budget of 0 s is spent" in json.loads((tmp_path / "results.json").read_text())["parts"]["late"]["skipped"]


def test_the_caps_fit_the_budget_and_the_budget_fits_8_minutes():
    module = gpu_check()
    assert sum(module.CAPS.values()) <= module.BUDGET <= 480 - 25  # 25 s for Python, torch and CUDA to start
    assert set(module.SMOKE["caps"]) == set(module.CAPS)


#: What the GPU machine has (/work/.library/device/KINDS.md, 2026-11): the versions ssrl's pins must accept.
GPU_MACHINE = {"torch": "2.11.0", "torchvision": "0.26.0", "pytorch-lightning": "2.6.6", "torchmetrics": "1.9.0"}


def test_the_gpu_machine_install_is_offline_and_names_every_wheel(repo_root):
    """scripts/gpu_check.sh installs with --no-index and --no-deps every package scripts/gpu_wheels.sh
    puts in wheels/ (pinned there), and ssrl's own pins accept the GPU machine's torch and Lightning."""
    import re

    from packaging.requirements import Requirement

    wheels = (repo_root / "scripts" / "gpu_wheels.sh").read_text()
    pinned = re.findall(r"([A-Za-z0-9_.-]+)==[0-9][0-9.]*", wheels)
    assert set(pinned) == {"hydra-core", "omegaconf", "antlr4-python3-runtime"}
    assert "pip wheel -q --no-deps -w wheels ." in wheels  # and ssrl itself
    install = (repo_root / "scripts" / "gpu_check.sh").read_text().split("-m pip install", 1)[1]
    install = install.split("||", 1)[0].split()
    assert {"--no-index", "--no-deps"} <= set(install) and install[install.index("--find-links") + 1] == "wheels"
    assert set(pinned) | {"ssrl"} <= set(install)
    dependencies = (repo_root / "pyproject.toml").read_text().split("\ndependencies = [", 1)[1].split("]", 1)[0]
    pins = {r.name: r.specifier for r in map(Requirement, re.findall(r'"([^"]+)"', dependencies))}
    assert len(pins) == 12
    for name, version in GPU_MACHINE.items():
        assert pins[name].contains(version), (name, version, pins[name])


def test_unmet_requirements_names_each_pin_the_installed_versions_break(tmp_path, monkeypatch):
    from importlib.metadata import version

    info = tmp_path / "fake_ssrl-1.0.dist-info"
    info.mkdir()
    torch = version("torch")
    requires = ["torch<1", f"torch=={torch}", "no-such-package>=1", 'pytest>99; extra == "dev"']
    metadata = ["Metadata-Version: 2.1", "Name: fake-ssrl", "Version: 1.0", *[f"Requires-Dist: {r}" for r in requires]]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    unmet = gpu_check().unmet_requirements("fake-ssrl")
    assert unmet == [f"torch<1 (installed: {torch})", "no-such-package>=1 (installed: none)"]
    assert gpu_check().unmet_requirements("no-such-package") is None


def test_input_wait_is_the_share_of_a_step_between_one_batch_end_and_the_next_start():
    """Host clock (CPU): steps of 30 ms with 10 ms between them -> 0.25; the first epoch (warm-up) and
    the gap across an epoch's end are left out."""
    import time
    from types import SimpleNamespace

    wait = gpu_check().InputWait()
    trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=SimpleNamespace(type="cpu")), current_epoch=0)
    for epoch, (step, gap) in enumerate([(0.001, 0.2), (0.03, 0.01), (0.03, 0.01)]):
        trainer.current_epoch = epoch
        for i in range(4):
            wait.on_train_batch_start(trainer, None, None, i)
            time.sleep(step)
            wait.on_train_batch_end(trainer, None, None, None, i)
            time.sleep(gap)
        time.sleep(0.2)  # the epoch's end: validation, checkpoint
    assert wait.share() == pytest.approx(0.25, abs=0.08)
