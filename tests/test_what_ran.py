"""The record says what ran (issue 25, case 5; issue 21, item 6): summary.json and TensorBoard's HParams
hold the precision Lightning ran (16-mixed on the CPU runs as bf16-mixed), the device and torch's thread
count, beside the config's request."""

from __future__ import annotations

import torch

from ssrl.run.job import train
from tests.tb_reader import read_hparams


def test_the_summary_and_hparams_record_the_precision_that_ran_the_device_and_the_threads(config, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        overrides = ["trainer.precision=16-mixed", "trainer.limit_train_batches=1"]
        summary = train(config(*overrides), tmp_path, overrides)
    finally:
        torch.set_num_threads(threads)
    assert summary["config"]["trainer"]["precision"] == "16-mixed"  # what was asked
    ran = summary["ran"]
    assert ran["precision"] == "bf16-mixed"  # what Lightning ran: the CPU has no fp16 autocast
    assert (ran["device"], ran["threads"], ran["processes"], ran["cuda"]) == ("cpu", 1, 1, None)
    assert ran["torch"] == torch.__version__ and ran["device_name"]
    _, (group,) = read_hparams(tmp_path / "tensorboard")
    assert group.hparams["ran.precision"].string_value == "bf16-mixed"
    assert group.hparams["ran.threads"].number_value == 1
    assert group.hparams["trainer.precision"].string_value == "16-mixed"
