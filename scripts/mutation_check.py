"""Mutation check: one-line faults in the science invariants, each of which the tests meant to guard it
must catch.

Each mutant replaces one exact snippet of one file (it must occur there exactly once) in a temporary
copy of the repository, then runs ``python -m pytest <its tests> -x -q`` in that copy, with PYTHONPATH
pointing at it. A mutant whose tests fail is KILLED; one whose tests pass SURVIVED. The unmutated copy
runs every targeted test first: they must pass there, or the check means nothing.

    python scripts/mutation_check.py              # every mutant; exit status 1 if any survives
    python scripts/mutation_check.py --list       # the mutants, without running them
    python scripts/mutation_check.py -k ema       # only mutants whose name contains "ema"

Not part of the test suite (it runs pytest once per mutant: a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MECH = "tests/test_mechanisms.py"
STEPS = "tests/test_steps.py"
PRESETS = "tests/test_presets.py"
SPLITS = "tests/test_splits.py"
SEEDS = "tests/test_report_seeds.py"
SDMI_GRADIENTS = "tests/test_sdmi_gradients.py"
VERDICTS = "tests/test_verdicts.py"
PROBE = "tests/test_mi_probe.py"
LOGGERS = "tests/test_loggers.py"
EVERY_LOGGER = f"{LOGGERS}::test_every_logger_gets_the_same_names_the_config_and_the_final_results"
EXPORT = "tests/test_export.py"
EXACT_EXPORT = f"{EXPORT}::test_the_exported_backbone_gives_the_runs_features_exactly"
DOCS = "tests/test_docs.py"
PER_IMAGE = "tests/test_per_image.py"
BASELINE = "tests/test_baseline.py"
DEVICE_EVAL = "tests/test_device_eval.py"
GPU_CHECK = "tests/test_gpu_check.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]


MUTANTS = [
    # ---------------------------------------------------------------- the six faults of issue 11
    Mutant(
        "sdmi-optimizers-swapped",
        "ssrl/paradigms/sdmi.py",
        "self._update(optimizers[0], loss, online_stats",
        "self._update(optimizers[-1], loss, online_stats",
        (f"{MECH}::test_gradient_target_each_phase_moves_exactly_its_parameters",),
    ),
    Mutant(
        "sdmi-m-step-uses-e-optimizer",
        "ssrl/paradigms/sdmi.py",
        "self._update(optimizers[1], loss, target_stats)",
        "self._update(optimizers[0], loss, target_stats)",
        (f"{MECH}::test_gradient_target_each_phase_moves_exactly_its_parameters",),
    ),
    Mutant(
        "ema-never-updated",
        "ssrl/paradigms/sdmi.py",
        "ema_update(self.target, self.online, momentum)",
        "None",
        (f"{MECH}::test_ema_target_equals_its_closed_form",),
    ),
    Mutant(
        "ema-momentum-inverted",
        "ssrl/paradigms/sdmi.py",
        "torch._foreach_mul_(xis, momentum)",
        "torch._foreach_mul_(xis, 1.0 - momentum)\n    momentum = 1.0 - momentum",
        (f"{MECH}::test_ema_target_equals_its_closed_form",),
    ),
    Mutant(
        "simsiam-without-stop-gradient",
        "ssrl/paradigms/sdmi.py",
        "{j: t.detach() for j, t in targets.items()}",
        "{j: t for j, t in targets.items()}",
        (f"{MECH}::test_simsiam_stop_gradient_shows_in_the_gradient",),
    ),
    Mutant(
        "jmi-stop-gradient-on-branch-b",
        "ssrl/paradigms/jmi.py",
        "return (self.target or self.online)(x)[1]",
        "return (self.target or self.online)(x)[1].detach()",
        (f"{MECH}::test_jmi_has_no_stop_gradient_both_encoders_train",),
    ),
    Mutant(
        "probe-standardised-on-test",
        "ssrl/evaluation/probes.py",
        "(((z - mean) / std) @ weight + bias)",
        "(((z - z.mean(0)) / std) @ weight + bias)",
        (f"{MECH}::test_linear_probe_fits_its_standardisation_on_the_labeled_features_only",),
    ),
    # ---------------------------------------------------------------- EMA target and its schedule
    Mutant(
        "ema-momentum-schedule-ignored",
        "ssrl/paradigms/optim.py",
        "return end - (end - base) * (math.cos(math.pi * progress) + 1) / 2",
        "return base",
        (f"{PRESETS}::test_byol_structure_and_momentum_schedule",),
    ),
    Mutant(
        "ema-momentum-schedule-off-by-one-batch",
        "ssrl/paradigms/sdmi.py",
        "k = self.batches_trained - 1",
        "k = self.batches_trained",
        (f"{PRESETS}::test_byol_structure_and_momentum_schedule",),
    ),
    Mutant(
        "ema-update-copies-the-online-weights",
        "ssrl/paradigms/sdmi.py",
        "torch._foreach_mul_(xis, momentum)",
        "torch._foreach_mul_(xis, 0.0)\n    momentum = 0.0",
        (f"{MECH}::test_ema_target_equals_its_closed_form",),
    ),
    # ---------------------------------------------------------------- steps counted in batches
    Mutant(
        "max-steps-counts-optimizer-steps",
        "ssrl/paradigms/base.py",
        "progress.total.ready = progress.total.completed = self.batches_trained",
        "pass",
        (f"{STEPS}::test_max_steps_counts_batches_and_schedules_end_together",),
    ),
    Mutant(
        "warmup-from-total-over-max-epochs",
        "ssrl/paradigms/base.py",
        "per_epoch = max(1, int(self.trainer.num_training_batches))",
        "per_epoch = max(1, self.total_batches // max(1, self.trainer.max_epochs or 1))",
        (f"{STEPS}::test_warmup_lasts_real_epochs_whichever_limit_ends_the_run",),
    ),
    Mutant(
        "skipped-update-does-not-advance-schedules",
        "ssrl/paradigms/sdmi.py",
        "self._train_batch(batch, batch_idx, optimizers)  # applied or skipped, every schedule advances",
        "if not self._train_batch(batch, batch_idx, optimizers):\n            return",
        (f"{STEPS}::test_skipped_updates_still_advance_every_schedule",),
    ),
    Mutant(
        "sdmi-schedules-out-of-step",
        "ssrl/paradigms/sdmi.py",
        "for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:",
        "for scheduler in (schedulers if isinstance(schedulers, list) else [schedulers])[:1]:",
        (f"{STEPS}::test_max_steps_counts_batches_and_schedules_end_together",),
    ),
    Mutant(
        "refresh-updates-online-batchnorm-again",
        "ssrl/paradigms/sdmi.py",
        "with torch.no_grad(), batchnorm_statistics_kept(self.online, self.predictor):",
        "with torch.no_grad():",
        (f"{MECH}::test_gradient_target_each_phase_moves_exactly_its_parameters",),
    ),
    Mutant(
        "m-step-without-stop-gradient-on-online",
        "ssrl/paradigms/sdmi.py",
        "fixed = {i: o[2].detach() for i, o in online.items()}",
        "fixed = {i: o[2] for i, o in online.items()}",
        (f"{MECH}::test_gradient_target_each_phase_moves_exactly_its_parameters",),
    ),
    Mutant(
        "sdmi-gradients-not-averaged-under-ddp",
        "ssrl/paradigms/sdmi.py",
        "average_gradients(p for group",
        "(lambda _: None)(p for group",
        ("tests/test_ddp_sdmi.py",),
    ),
    Mutant(
        "coalesced-average-not-divided-by-world-size",
        "ssrl/distributed.py",
        "flat /= size",
        "pass",
        ("tests/test_ddp.py",),
    ),
    Mutant(
        "coalesced-average-not-copied-back",
        "ssrl/distributed.py",
        "torch._foreach_copy_(grads,",
        "(lambda *_: None)(grads,",
        ("tests/test_ddp.py",),
    ),
    Mutant(
        "coalesced-average-one-call-per-gradient",
        "ssrl/distributed.py",
        "buckets.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)",
        "buckets[id(p)] = [p.grad]",
        ("tests/test_ddp.py",),
    ),
    Mutant(
        "compile-ignored",
        "ssrl/paradigms/base.py",
        "self.online.compile()",
        "pass",
        ("tests/test_compile.py",),
    ),
    Mutant(
        "refresh-batchnorm-statistics-not-restored",
        "ssrl/nets/statistics.py",
        "torch._foreach_copy_(self.buffers, self.saved)",
        "pass",
        (f"{MECH}::test_gradient_target_each_phase_moves_exactly_its_parameters",),
    ),
    # ---------------------------------------------------------------- the MI probe (issue 21, item 1)
    Mutant(
        "mi-probe-critic-not-trained",
        "ssrl/mi/probe.py",
        "optimizer.step()",
        "pass",
        (f"{PROBE}::test_the_probe_recovers_the_mi_of_correlated_gaussians",),
    ),
    Mutant(
        "mi-probe-critic-trained-on-the-joint-term-only",
        "ssrl/mi/probe.py",
        "loss = -infonce(critic(a[index], b[index])).estimate",
        "loss = -infonce(critic(a[index], b[index])).joint",
        (f"{PROBE}::test_the_probe_recovers_the_mi_of_correlated_gaussians",),
    ),
    Mutant(
        "mi-probe-scored-on-the-train-pairs",
        "ssrl/mi/probe.py",
        "return score(critic, *val, batch, seed + 1, budget.val_permutations)",
        "return score(critic, *train, batch, seed + 1, budget.val_permutations)",
        (f"{PROBE}::test_the_probe_scores_the_val_pairs_it_is_given",),
    ),
    Mutant(
        "mi-probe-estimators-swapped",
        "ssrl/mi/probe.py",
        "for name, estimator in MI_IN_NATS.items():",
        "for name, estimator in zip(MI_IN_NATS, reversed(MI_IN_NATS.values()), strict=True):",
        (f"{PROBE}::test_the_probe_recovers_the_mi_of_correlated_gaussians",),
    ),
    Mutant(
        "mi-probe-encoder-in-training-mode",
        "ssrl/run/mi_probe.py",
        "    module.eval()\n",
        "    pass\n",
        (f"{PROBE}::test_a_measurement_leaves_the_model_as_it_was",),
    ),
    Mutant(
        "mi-probe-training-mode-not-restored",
        "ssrl/run/mi_probe.py",
        "m.training = training",
        "pass",
        (f"{PROBE}::test_a_measurement_leaves_the_model_as_it_was",),
    ),
    Mutant(
        "mi-probe-one-view-for-both-branches",
        "ssrl/run/mi_probe.py",
        "b.append(module.branch_b(xb).float())",
        "b.append(module.branch_b(xa).float())",
        (f"{PROBE}::test_view_pairs_are_two_views_through_each_branch",),
    ),
    Mutant(
        "mi-probe-views-redrawn-at-every-measurement",
        "ssrl/run/mi_probe.py",
        "g = torch.Generator(device=module.device).manual_seed(seed_of(seed, VIEW_KEY, split, i))",
        "g = torch.Generator(device=module.device)\n        g.seed()",
        (f"{PROBE}::test_a_measurement_leaves_the_model_as_it_was",),
    ),
    Mutant(
        "mi-probe-not-measured-before-training",
        "ssrl/run/mi_probe.py",
        'if trainer.state.fn != "fit":\n            return True',
        'if trainer.state.fn != "fit":\n            return False',
        (f"{PROBE}::test_a_run_measures_before_training_every_k_epochs_and_at_the_end",),
    ),
    Mutant(
        "mi-probe-not-measured-at-the-end",
        "ssrl/run/mi_probe.py",
        "return epochs % self.every == 0 or last",
        "return epochs % self.every == 0",
        (
            f"{PROBE}::test_a_run_measures_before_training_every_k_epochs_and_at_the_end",
            f"{PROBE}::test_a_run_ended_by_max_steps_is_measured_at_its_end",
        ),
    ),
    Mutant(
        "sdmi-e-steps-ignored",
        "ssrl/paradigms/sdmi.py",
        "for k in range(p.e_steps):",
        "for k in range(1):",
        (f"{SDMI_GRADIENTS}::test_more_steps_per_phase",),
    ),
    Mutant(
        "sdmi-m-steps-ignored",
        "ssrl/paradigms/sdmi.py",
        "for k in range(p.m_steps):",
        "for k in range(1):",
        (f"{SDMI_GRADIENTS}::test_more_steps_per_phase",),
    ),
    # ---------------------------------------------------------------- presets
    Mutant(
        "predictor-lr-decays",
        "ssrl/paradigms/optim.py",
        'factors = [(lambda step: 1.0) if group.get("fixed_lr") else factor for group in optimizer.param_groups]',
        "factors = [factor for group in optimizer.param_groups]",
        (f"{PRESETS}::test_simsiam_structure_and_fixed_predictor_lr",),
    ),
    Mutant(
        "projector-output-bn-dropped",
        "ssrl/nets/heads.py",
        "    if out_bn:\n        blocks.append",
        "    if False:\n        blocks.append",
        (f"{PRESETS}::test_simsiam_structure_and_fixed_predictor_lr",),
    ),
    Mutant(
        "vicreg-variance-terms-summed",
        "ssrl/mi/surrogates.py",
        "marginal = variance * (_variance(a, gamma, eps) + _variance(b, gamma, eps)) / 2",
        "marginal = variance * (_variance(a, gamma, eps) + _variance(b, gamma, eps))",
        (f"{PRESETS}::test_vicreg_averages_its_variance_terms",),
    ),
    # ---------------------------------------------------------------- the bound
    Mutant(
        "dv-marginal-sign-of-log-n",
        "ssrl/mi/estimators.py",
        "torch.logsumexp(off, dim=0) - math.log(off.numel())",
        "torch.logsumexp(off, dim=0) + math.log(off.numel())",
        ("tests/test_estimators.py",),
    ),
    Mutant(
        "dv-marginal-counts-the-diagonal",
        "ssrl/mi/estimators.py",
        "torch.logsumexp(off, dim=0) - math.log(off.numel())",
        "torch.logsumexp(off, dim=0) - math.log(scores.shape[0] ** 2)",
        ("tests/test_estimators.py",),
    ),
    Mutant(
        "infonce-without-log-n",
        "ssrl/mi/estimators.py",
        "marginal = torch.logsumexp(rows, dim=1).mean() - log_n",
        "marginal = torch.logsumexp(rows, dim=1).mean()",
        ("tests/test_estimators.py",),
    ),
    Mutant(
        "nt-xent-log-2n-not-2n-1",
        "ssrl/mi/estimators.py",
        "log_n = math.log(rows.shape[1] - (1 if same_view is not None else 0))",
        "log_n = math.log(rows.shape[1])",
        (f"{PRESETS}::test_simclr_is_nt_xent",),
    ),
    Mutant(
        "objective-sign",
        "ssrl/mi/objective.py",
        "return Step(-terms.objective(self.weight), terms, scores)",
        "return Step(terms.objective(self.weight), terms, scores)",
        (f"{PRESETS}::test_simsiam_is_simsiam",),
    ),
    # ---------------------------------------------------------------- splits, MI units, seeds (issue 9)
    Mutant(
        "val-split-overlaps-test",
        "ssrl/data/splits.py",
        "train, val = split_off_val(subset(whole, rest), labels[rest], cfg)",
        "train, val = split_off_val(whole, labels, cfg)",
        (f"{SPLITS}::test_three_splits_are_disjoint_whole_stratified_and_fixed_by_their_seed",),
    ),
    Mutant(
        "styled-digits-val-sources-are-test-sources",
        "ssrl/data/styled_digits.py",
        "return rest[kept], rest[held], test",
        "return rest[kept], test, test",
        (f"{SPLITS}::test_styled_digits_cut_by_source_digit",),
    ),
    Mutant(
        "per-epoch-diagnostics-on-test",
        "ssrl/data/module.py",
        "return self._loader(self.splits.val)",
        "return self._loader(self.splits.test)",
        (f"{SPLITS}::test_per_epoch_diagnostics_read_val_and_the_probes_score_val_and_test",),
    ),
    Mutant(
        "nwj-reported-as-mi",
        "ssrl/mi/estimators.py",
        'MI_IN_NATS: dict[str, Callable[[Tensor], Terms]] = {"dv": dv, "infonce": infonce}',
        'MI_IN_NATS: dict[str, Callable[[Tensor], Terms]] = {"dv": nwj, "infonce": infonce}',
        ("tests/test_estimators.py::test_mi_in_nats_is_shift_invariant_and_the_others_are_not",),
    ),
    Mutant(
        "mi-rise-read-from-dv-for-infonce",
        "ssrl/mi/estimators.py",
        'return "infonce" if estimator == "infonce" else "dv"',
        'return "dv"',
        (f"{SEEDS}::test_mi_rise_reads_the_nats_estimate_that_tracks_the_estimator",),
    ),
    Mutant(
        "t-interval-with-the-normal-quantile",
        "ssrl/analysis/intervals.py",
        "half = t_quantile(n - 1, level) * se",
        "half = 1.96 * se",
        (f"{SEEDS}::test_t_interval_matches_a_hand_computation",),
    ),
    Mutant(
        "probe-gain-unpaired",
        "ssrl/analysis/cells.py",
        "return t_interval([a - b for a, b in pairs if finite(a) and finite(b)], support=(-1.0, 1.0))",
        "return t_interval([a for a, b in pairs if finite(a) and finite(b)], support=(-1.0, 1.0))",
        (f"{SEEDS}::test_cells_give_intervals_and_count_verdicts",),
    ),
    Mutant(
        "learns-without-significance",
        "ssrl/analysis/cells.py",
        'word = "learns" if gain and gain.low > 0 and rise and rise.low > 0 else "neither"',
        'word = "learns" if gain and gain.mean > 0 and rise and rise.low > 0 else "neither"',
        (f"{SEEDS}::test_cells_give_intervals_and_count_verdicts",),
    ),
    Mutant(
        "same-run-ignores-jsd-joint-term",
        "ssrl/run/same_run.py",
        'JOINT_ONLY = ("cos_dv", "infonce", "nwj")',
        'JOINT_ONLY = ("cos_dv", "infonce", "nwj", "jsd")',
        ("tests/test_same_run.py::test_the_axes_that_can",),
    ),
    Mutant(
        "same-run-ignores-the-predictors-fields",
        "ssrl/run/same_run.py",
        'if (ident.get("predictor") or {}).get("name") == "none":',
        "if True:",
        ("tests/test_same_run.py::test_the_axes_that_can",),
    ),
    # ---------------------------------------------------------------- verdicts that can come out either way (issue 21)
    Mutant(
        "accuracy-runs-part-keeps-the-residual",
        "ssrl/analysis/accuracy.py",
        "return max(0.0, (ms_run - ms_e) / (n * m)), float(n - 1)",
        "return max(0.0, ms_run / (n * m)), float(n - 1)",
        (f"{VERDICTS}::test_accuracy_variance_parts_match_a_hand_computation",),
    ),
    Mutant(
        "accuracy-interval-without-test-images",
        "ssrl/analysis/accuracy.py",
        "parts = [group.runs_part(), images_part(group.per_image)]",
        "parts = [group.runs_part()]",
        (f"{VERDICTS}::test_accuracy_variance_parts_match_a_hand_computation",),
    ),
    Mutant(
        "difference-images-unpaired",
        "ssrl/analysis/accuracy.py",
        "images_part(first.per_image - second.per_image)]",
        "images_part(first.per_image), images_part(second.per_image)]",
        (f"{VERDICTS}::test_a_difference_keeps_each_groups_runs_and_the_paired_images",),
    ),
    Mutant(
        "satterthwaite-df-unsquared",
        "ssrl/analysis/intervals.py",
        "return math.inf if denominator == 0 else total * total / denominator",
        "return math.inf if denominator == 0 else total / denominator",
        (f"{VERDICTS}::test_accuracy_variance_parts_match_a_hand_computation",),
    ),
    Mutant(
        "interval-leaves-the-support",
        "ssrl/analysis/intervals.py",
        "return Interval(mean, _clip(mean - half, support), _clip(mean + half, support), n, float(n - 1), se)",
        "return Interval(mean, mean - half, mean + half, n, float(n - 1), se)",
        (f"{VERDICTS}::test_intervals_stay_in_the_statistics_range",),
    ),
    Mutant(
        "holm-without-correction",
        "ssrl/analysis/comparisons.py",
        "running = max(running, min(1.0, (m - rank) * p_values[i]))",
        "running = max(running, min(1.0, p_values[i]))",
        (
            f"{VERDICTS}::test_holm_matches_a_hand_computation",
            f"{VERDICTS}::test_holm_correction_turns_a_lone_support_inconclusive",
        ),
    ),
    Mutant(
        "absence-of-evidence-read-as-contradiction",
        "ssrl/analysis/comparisons.py",
        'outcome = "inconclusive"\n        if effect is not None and p_adj <= ALPHA:',
        'outcome = "contradicted"\n        if effect is not None and p_adj <= ALPHA:',
        (f"{VERDICTS}::test_each_outcome_on_fixtures",),
    ),
    Mutant(
        "comparison-ignores-the-margin",
        "ssrl/analysis/comparisons.py",
        "support, contradict = one_sided_p(effect.mean, effect.se, effect.df, margin)",
        "support, contradict = one_sided_p(effect.mean, effect.se, effect.df, 0.0)",
        (f"{VERDICTS}::test_each_outcome_on_fixtures",),
    ),
    Mutant(
        "support-despite-a-collapsed-arm",
        "ssrl/analysis/comparisons.py",
        "if above and d.arm_not_collapsed and arm_collapsed:",
        "if False:",
        (f"{VERDICTS}::test_support_needs_the_arm_not_collapsed",),
    ),
    Mutant(
        "cell-collapses-when-any-seed-does",
        "ssrl/analysis/cells.py",
        "if sum(collapsed) * 2 > n:",
        "if sum(collapsed) > 0:",
        (f"{VERDICTS}::test_a_cell_collapses_only_when_most_seeds_do",),
    ),
    Mutant(
        "sensitivity-moves-the-wrong-constant",
        "ssrl/analysis/sensitivity.py",
        '("std_fraction", [(fraction * f, rank) for f in FACTORS]),',
        '("std_fraction", [(fraction, rank * f) for f in FACTORS]),',
        (f"{VERDICTS}::test_the_cells_that_hang_on_the_collapse_line",),
    ),
    Mutant(
        "pooling-without-the-experiment-check",
        "ssrl/analysis/pooling.py",
        "if fields:\n                shown",
        "if False:\n                shown",
        (f"{VERDICTS}::test_a_report_pools_sweeps_and_refuses_another_experiment",),
    ),
    Mutant(
        "mi-probe-growth-read-from-the-critic-curve",
        "ssrl/analysis/runs.py",
        'growth = self.growth(metric.rsplit("_", 1)[0])',
        'growth = self.growth("mi")',
        (f"{VERDICTS}::test_the_mi_probes_growth_reads_its_own_measurements",),
    ),
    Mutant(
        "comparison-against-zero-reads-the-baseline",
        "ssrl/analysis/comparisons.py",
        "estimate = means[0] - (means[1] if control is not None else 0.0)",
        "estimate = means[0] - (means[1] if control is not None else 1.0)",
        (f"{VERDICTS}::test_a_value_against_the_margin_itself",),
    ),
    # ---------------------------------------------------------------- per-image tables, baseline, device evaluation
    Mutant(
        "per-image-bits-out-of-order",
        "ssrl/evaluation/probes.py",
        'results[name].update({f"{kind}_correct": bits(c) for kind, c in right.items()})',
        'results[name].update({f"{kind}_correct": bits(c.flip(0)) for kind, c in right.items()})',
        (f"{PER_IMAGE}::test_the_offline_evaluation_writes_each_images_correctness",),
    ),
    Mutant(
        "report-fallback-not-marked",
        "ssrl/analysis/cells.py",
        'return self.group("probe") is not None and self.baseline_group("probe") is not None',
        "return True",
        (f"{PER_IMAGE}::test_the_report_falls_back_to_the_seed_t_interval_without_tables",),
    ),
    Mutant(
        "baseline-cache-never-read",
        "ssrl/run/baseline.py",
        "if cached is not None:",
        "if False:",
        (f"{BASELINE}::test_a_grid_computes_the_baseline_once",),
    ),
    Mutant(
        "baseline-cache-key-ignores-the-data",
        "ssrl/run/baseline.py",
        '"data": data,',
        '"data": None,',
        (f"{BASELINE}::test_a_grid_computes_the_baseline_once",),
    ),
    Mutant(
        "baseline-cache-without-the-lock",
        "ssrl/run/baseline.py",
        "fcntl.flock(handle, fcntl.LOCK_EX)",
        "None",
        (f"{BASELINE}::test_a_grid_computes_the_baseline_once",),
    ),
    Mutant(
        "baseline-inits-all-one-network",
        "ssrl/run/baseline.py",
        "torch.manual_seed(seed_of(BASELINE_SEED, i))",
        "torch.manual_seed(BASELINE_SEED)",
        (f"{BASELINE}::test_the_inits_are_different_networks",),
    ),
    Mutant(
        "baseline-draws-from-the-runs-random-state",
        "ssrl/run/baseline.py",
        "with torch.random.fork_rng(devices=[]):",
        "with torch.no_grad():",
        (f"{BASELINE}::test_the_baseline_leaves_the_runs_random_state_alone",),
    ),
    Mutant(
        "gain-interval-without-the-baselines-variance",
        "ssrl/analysis/accuracy.py",
        "+ ([baseline.runs_part()] if baseline.n > 1 else [])",
        "+ []",
        (f"{BASELINE}::test_the_gain_interval_carries_the_baselines_variance",),
    ),
    Mutant(
        "spectrum-from-the-gram-eigenvalues-unrooted",
        "ssrl/evaluation/collapse.py",
        "return torch.linalg.eigvalsh(z.T @ z).clamp_min(0).sqrt()",
        "return torch.linalg.eigvalsh(z.T @ z).clamp_min(0)",
        (f"{DEVICE_EVAL}::test_effective_rank_of_a_known_spectrum",),
    ),
    Mutant(
        "uniformity-subsample-not-fixed",
        "ssrl/evaluation/collapse.py",
        "generator=torch.Generator().manual_seed(0))",
        "generator=None)",
        (f"{DEVICE_EVAL}::test_uniformity_against_the_formula_and_on_its_fixed_subsample",),
    ),
    Mutant(
        "embedding-std-not-l2-normalised",
        "ssrl/evaluation/collapse.py",
        "return float(F.normalize(z.double(), dim=1).std(0).mean())",
        "return float(z.double().std(0).mean())",
        (f"{DEVICE_EVAL}::test_embedding_std_reads_l2_normalised_embeddings",),
    ),
    Mutant(
        "torch-probe-without-the-l2-penalty",
        "ssrl/evaluation/probes.py",
        " + weight.pow(2).sum() / (2 * len(y))",
        "",
        (f"{DEVICE_EVAL}::test_the_torch_probe_agrees_with_scikit_learns",),
    ),
    # ---------------------------------------------------------------- MI growth (issue 10)
    Mutant(
        "mi-largest-drop-from-the-first-epoch",
        "ssrl/analysis/runs.py",
        "        peak = max(peak, v)\n",
        "",
        (f"{SEEDS}::test_mi_growth_is_kendalls_tau_and_the_largest_drop",),
    ),
    Mutant(
        "mi-largest-drop-of-one-step",
        "ssrl/analysis/runs.py",
        "        peak = max(peak, v)\n        drop = max(drop, peak - v)\n",
        "        drop = max(drop, peak - v)\n        peak = v\n",
        (f"{SEEDS}::test_mi_growth_is_kendalls_tau_and_the_largest_drop",),
    ),
    Mutant(
        "mi-growth-tau-of-a-sorted-curve",
        "ssrl/analysis/runs.py",
        "return float(kendalltau(range(len(values)), values)[0]), float(drop)",
        "return float(kendalltau(range(len(values)), sorted(values))[0]), float(drop)",
        (f"{SEEDS}::test_mi_growth_is_kendalls_tau_and_the_largest_drop",),
    ),
    # ---------------------------------------------------------------- loggers, export, docs (issue 26)
    Mutant(
        "logger-lightning-names-kept",
        "ssrl/run/loggers.py",
        "log_metrics({metric_name(k): v for k, v in metrics.items()}, step)",
        "log_metrics(dict(metrics), step)",
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-config-not-logged",
        "ssrl/run/loggers.py",
        "logger.log_hyperparams(dict(config))",
        "logger.log_hyperparams({})",
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-final-results-not-logged",
        "ssrl/run/loggers.py",
        "logger.log_metrics(trained, step)",
        "None",
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-untrained-results-at-the-last-step",
        "ssrl/run/loggers.py",
        "logger.log_metrics(untrained, 0)",
        "logger.log_metrics(untrained, step)",
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-wandb-run-left-open",
        "ssrl/run/loggers.py",
        "logger.experiment.finish(exit_code=0 if ok else 1)",
        "None",
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-save-dir-not-under-the-run",
        "ssrl/run/loggers.py",
        "return Path(run_dir) / given if given is not None else Path(run_dir)",
        "return Path(given) if given is not None else Path(run_dir)",
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-run-name-not-given",
        "ssrl/run/loggers.py",
        'given = {"name": run_name, "run_name": run_name, "place": place}',
        'given = {"place": place}',
        (EVERY_LOGGER,),
    ),
    Mutant(
        "logger-missing-extra-not-caught",
        "ssrl/run/loggers.py",
        "if importlib.util.find_spec(package) is None:",
        "if False:",
        (f"{LOGGERS}::test_a_missing_package_fails_before_any_work_naming_the_extra",),
    ),
    Mutant(
        "logger-arguments-not-checked",
        "ssrl/run/loggers.py",
        "inspect.signature(cls).bind_partial(**_arguments(spec))",
        "None",
        (f"{LOGGERS}::test_a_logger_argument_its_class_does_not_take_is_refused",),
    ),
    Mutant(
        "logger-old-config-form-not-read",
        "ssrl/run/loggers.py",
        'return [node["name"]]',
        "return []",
        (f"{LOGGERS}::test_a_run_from_before_target_loggers_still_resumes",),
    ),
    Mutant(
        "export-untrained-weights",
        "ssrl/export.py",
        "encoder.load_state_dict(online)",
        "None",
        (EXACT_EXPORT,),
    ),
    Mutant(
        "export-stems-swapped",
        "ssrl/nets/export.py",
        'stem = "cifar" if backbone["cifar_stem"] else "imagenet"',
        'stem = "imagenet" if backbone["cifar_stem"] else "cifar"',
        (EXACT_EXPORT,),
    ),
    Mutant(
        "export-std-recorded-as-mean",
        "ssrl/nets/export.py",
        '"mean": list(data["views"]["mean"])[:channels]',
        '"mean": list(data["views"]["std"])[:channels]',
        (EXACT_EXPORT,),
    ),
    Mutant(
        "export-projector-not-loaded",
        "ssrl/nets/export.py",
        "head.load_state_dict({k[len(PROJECTOR) :]: v for k, v in tensors.items() if k.startswith(PROJECTOR)})",
        "None",
        (EXACT_EXPORT,),
    ),
    Mutant(
        "docs-command-with-a-wrong-option",
        "docs/loggers_and_export.md",
        "ssrl-train 'logger=[tensorboard,wandb]'\n",
        "ssrl-train 'logger=[tensorboard,wandbb]'\n",
        (DOCS,),
    ),
    Mutant(
        "docs-link-to-a-missing-anchor",
        "docs/loggers_and_export.md",
        "(method.md#which-values-are-mi-in-nats)",
        "(method.md#which-values-are-mi)",
        (DOCS,),
    ),
    # ---------------------------------------------------------------- silent results, round two (issue 25)
    Mutant(
        "sixteen-bit-pixels-not-scaled",
        "ssrl/data/folders.py",
        "np.rint(pixels * (255 / top))",
        "np.rint(pixels).clip(0, 255)",
        ("tests/test_folders.py::test_high_bit_depth_images_are_scaled_to_8_bit_on_every_path",),
    ),
    Mutant(
        "sixteen-bit-png-tensor-not-scaled",
        "ssrl/data/folders.py",
        "(image.float() * (255 / 65535)).round()",
        "image.clamp(max=255)",
        ("tests/test_folders.py::test_high_bit_depth_images_are_scaled_to_8_bit_on_every_path",),
    ),
    Mutant(
        "ranges-let-infinity-through",
        "ssrl/validate.py",
        "not isinstance(value, (int, float)) or not math.isfinite(value)",
        "not isinstance(value, (int, float))",
        ("tests/test_ranges.py",),
    ),
    Mutant(
        "ranges-skip-the-predictor-lr-scale",
        "ssrl/validate.py",
        '    "predictor.lr_scale": POSITIVE,\n',
        "",
        ("tests/test_ranges.py",),
    ),
    Mutant(
        "ranges-open-end-read-as-closed",
        "ssrl/validate.py",
        "(value < self.high if self.open_high else value <= self.high)",
        "(value <= self.high)",
        ("tests/test_ranges.py",),
    ),
    Mutant(
        "sixteen-bit-weights-let-through",
        "ssrl/validate.py",
        "precision in PRECISIONS,",
        "True,",
        ("tests/test_ranges.py",),
    ),
    Mutant(
        "what-ran-records-the-interop-threads",
        "ssrl/run/what_ran.py",
        '"threads": torch.get_num_threads(),',
        '"threads": torch.get_num_interop_threads(),',
        ("tests/test_what_ran.py",),
    ),
    Mutant(
        "what-ran-not-given-to-the-loggers",
        "ssrl/run/job.py",
        '{**config, "ran": base["ran"]}',
        "config",
        ("tests/test_what_ran.py",),
    ),
    Mutant(
        "unbounded-critic-accepted-without-clipping",
        "ssrl/validate.py",
        "bool(t.gradient_clip_val),",
        "True,",
        ("tests/test_unbounded_critics.py",),
    ),
    Mutant(
        "unbounded-critic-trained-without-jmi-clipping",
        "ssrl/run/job.py",
        'skip = SPEED_FIELDS + (MANUAL_FIELDS if cfg.paradigm.name == "sdmi" else ())',
        "skip = SPEED_FIELDS + MANUAL_FIELDS",
        ("tests/test_unbounded_critics.py::test_following_the_advice_trains_the_dot_critic_finitely",),
    ),
    Mutant(
        "unbounded-critic-advised-to-raise-tau",
        "ssrl/paradigms/base.py",
        '"lower trainer.gradient_clip_val" if unbounded else "raise estimator.tau"',
        '"raise estimator.tau"',
        ("tests/test_unbounded_critics.py",),
    ),
    Mutant(
        "what-ran-left-out-of-the-sweep-experiment",
        "ssrl/run/tensorboard.py",
        '{**summary["config"], **ran}',
        'summary["config"]',
        ("tests/test_tensorboard.py::test_a_2x2_sweep_reads_back_as_one_experiment",),
    ),
    Mutant(
        "gpu-asked-without-cuda-accepted",
        "ssrl/validate.py",
        'accelerator not in ("gpu", "cuda") or torch.cuda.is_available(),',
        "True,",
        ("tests/test_cli.py::test_gpu_without_cuda_is_one_clear_line",),
    ),
    Mutant(
        "temporary-checkpoint-left-on-a-full-disk",
        "ssrl/run/callbacks.py",
        "tmp.unlink(missing_ok=True)",
        "pass",
        ("tests/test_checkpoints.py::test_a_full_disk_is_one_line_with_no_temporary_file_left",),
    ),
    Mutant(
        "older-checkpoint-config-left-unfilled",
        "ssrl/run/checkpoint.py",
        'checkpoint["ssrl"]["config"], filled = with_todays_defaults(checkpoint["ssrl"]["config"])',
        "filled = {}",
        ("tests/test_eval_and_report.py::test_an_older_checkpoint_loads_with_todays_defaults_said",),
    ),
    Mutant(
        "damaged-checkpoint-left-to-torch-load",
        "ssrl/run/checkpoint.py",
        "    except Exception as exc:",
        "    except ZeroDivisionError as exc:",
        ("tests/test_eval_and_report.py::test_a_truncated_checkpoint_is_one_line",),
    ),
    Mutant(
        "eval-data-root-ignored",
        "ssrl/evaluate_run.py",
        "cfg.data.root = data_root",
        "cfg.data.root = cfg.data.root",
        ("tests/test_eval_and_report.py::test_eval_reads_moved_data_from_data_root",),
    ),
    Mutant(
        "worker-error-kept-with-its-traceback",
        "ssrl/errors.py",
        "if caught is None:",
        "if True:",
        ("tests/test_folders.py::test_a_corrupt_file_read_by_workers_is_one_line",),
    ),
    Mutant(
        "failure-left-out-of-the-run-log",
        "ssrl/train.py",
        'in_run_log(f"ssrl-train: {run_dir.name} failed: {error}")',
        "pass",
        ("tests/test_folders.py::test_a_corrupt_file_read_by_workers_is_one_line",),
    ),
    # ---------------------------------------------------------------- issue 25, cases 3, 4, 6, 8, 10
    Mutant(
        "report-reads-a-summary-that-is-no-object",
        "ssrl/analysis/runs.py",
        "if not isinstance(summary, dict):",
        "if False:",
        ("tests/test_report_odd_files.py",),
    ),
    Mutant(
        "sweep-with-failed-jobs-exits-0",
        "ssrl/run/hydra_callbacks.py",
        '.get("status") == "failed"',
        '.get("status") == "FAILED"',
        ("tests/test_sweep_exit.py",),
    ),
    Mutant(
        "sweep-with-a-refused-job-exits-0",
        "ssrl/run/hydra_callbacks.py",
        "job_return._return_value is None",
        "job_return._return_value is False",
        ("tests/test_sweep_exit.py",),
    ),
    Mutant(
        "failed-report-leaves-the-previous-one",
        "ssrl/report.py",
        "    except BaseException:\n        remove_report(out)\n        raise",
        "    except BaseException:\n        raise",
        ("tests/test_sweep_exit.py",),
    ),
    Mutant(
        "busy-run-folder-refused-only-after-hydra-wrote-into-it",
        "ssrl/run/lock.py",
        "fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)",
        "fcntl.flock(fd, fcntl.LOCK_UN)",
        ("tests/test_run_lock.py",),
    ),
    Mutant(
        "forked-worker-keeps-the-run-folder-lock",
        "ssrl/run/lock.py",
        "os.register_at_fork(after_in_child=_forget_in_child)",
        "pass",
        ("tests/test_run_lock.py::test_a_forked_worker_does_not_keep_the_lock",),
    ),
    Mutant(
        "pre-check-skips-the-experiment-files-sweeps",
        "ssrl/run/cli.py",
        "variants(experiment_sweeps(config_name, overrides, loader, multirun) + overrides, loader)",
        "variants(overrides, loader)",
        ("tests/test_cli.py::test_the_pre_check_expands_an_experiment_files_sweeps",),
    ),
    Mutant(
        "pre-check-cannot-expand-glob-sweeps",
        "ssrl/run/cli.py",
        "OverridesParser.create(config_loader=config_loader)",
        "OverridesParser.create()",
        ("tests/test_cli.py::test_variants_expand_globs_and_keep_the_last_value_of_a_key",),
    ),
    Mutant(
        "tensorboard-sweep-cannot-expand-glob-sweeps",
        "ssrl/run/tensorboard.py",
        "OverridesParser.create(config_loader=loader)",
        "OverridesParser.create()",
        ("tests/test_cli.py::test_variants_expand_globs_and_keep_the_last_value_of_a_key",),
    ),
    Mutant(
        "group-without-plus-not-explained",
        "ssrl/run/cli.py",
        "    if not_default:",
        "    if False:",
        ("tests/test_cli.py::test_bad_input_is_one_clear_line[preset=simsiam]",),
    ),
    # ---------------------------------------------------------------- issue 23: the GPU paths
    Mutant(
        "local-grid-jobs-all-on-gpu-0",
        "ssrl/run/grid_devices.py",
        "return job_num % visible",
        "return 0",
        ("tests/test_grid_devices.py::test_each_job_of_a_local_grid_takes_the_next_gpu",),
    ),
    Mutant(
        "local-grid-gpu-not-given-to-the-trainer",
        "ssrl/train.py",
        "in_sweep=multirun, place=place, devices=devices)",
        "in_sweep=multirun, place=place)",
        ("tests/test_grid_devices.py::test_a_job_of_a_local_grid_trains_on_its_gpu",),
    ),
    Mutant(
        "dataloader-workers-started-the-launchers-way",
        "ssrl/data/module.py",
        'return "fork"',
        "return None",
        ("tests/test_grid_devices.py::test_dataloader_workers_start_inside_the_local_launchers_workers",),
    ),
    Mutant(
        "nvjpeg-decodes-without-draining-the-stream",
        "ssrl/data/folders.py",
        "wait_for_stream(device)",
        "None",
        ("tests/test_device_decode.py::test_the_batched_device_decode_waits_for_the_callers_stream",),
    ),
    Mutant(
        "nvjpeg-rejected-jpeg-stops-the-run",
        "ssrl/data/folders.py",
        "image = decode_tensor(files[k], paths[k], channels).to(device)  # a corrupt file raises here",
        "raise exc",
        ("tests/test_device_decode.py",),
    ),
    Mutant(
        "nvjpeg-rejected-jpeg-retried-every-batch",
        "ssrl/data/folders.py",
        "rejected.add(paths[k])",
        "None",
        ("tests/test_device_decode.py",),
    ),
    Mutant(
        "sdmi-clips-the-scaled-gradient",
        "ssrl/paradigms/sdmi.py",
        "        optimizer.step()  # decided and clipped in on_before_optimizer_step",
        "        self.on_before_optimizer_step(optimizer.optimizer)\n"
        "        self._pending = (loss, statistics)\n"
        "        optimizer.step()",
        ("tests/test_gpu_precision.py::test_sdmi_clips_the_unscaled_gradient_under_16_mixed",),
    ),
    Mutant(
        "bf16-default-on-emulating-gpus",
        "ssrl/run/job.py",
        "torch.cuda.get_device_capability(i)[0] >= 8",
        "torch.cuda.get_device_capability(i)[0] >= 7",
        ("tests/test_gpu_precision.py::test_bf16_is_the_default_only_where_it_is_native",),
    ),
    Mutant(
        "ddp-stop-signal-acted-on-alone",
        "ssrl/run/callbacks.py",
        "if trainer.world_size == 1:",
        "if True:",
        ("tests/test_ddp_stop.py",),
    ),
    Mutant(
        "gpu-check-resume-compares-only-the-wall-clock",
        "scripts/gpu_check.py",
        "if k not in WALL_CLOCK",
        "if k in WALL_CLOCK",
        ("tests/test_gpu_check.py::test_resume_comparison_ignores_only_the_wall_clock",),
    ),
    Mutant(
        "gpu-machine-install-reaches-for-an-index",
        "scripts/gpu_check.sh",
        "--no-index --find-links wheels",
        "--find-links wheels",
        ("tests/test_gpu_check.py::test_the_gpu_machine_install_is_offline_and_names_every_wheel",),
    ),
    Mutant(
        "gpu-check-misses-a-pin-the-installed-version-breaks",
        "scripts/gpu_check.py",
        "if installed is None or not req.specifier.contains(installed, prereleases=True):",
        "if installed is None:",
        ("tests/test_gpu_check.py::test_unmet_requirements_names_each_pin_the_installed_versions_break",),
    ),
    Mutant(
        "gpu-check-part-never-capped",
        "scripts/gpu_check.py",
        "signal.setitimer(signal.ITIMER_REAL, seconds)",
        "signal.setitimer(signal.ITIMER_REAL, 0)",
        (f"{GPU_CHECK}::test_a_part_past_its_cap_keeps_its_figures_and_the_results_are_written_after_each_part",),
    ),
    Mutant(
        "gpu-check-results-written-only-at-the-end",
        "scripts/gpu_check.py",
        "        self.write()\n        return value",
        "        return value",
        (f"{GPU_CHECK}::test_a_part_past_its_cap_keeps_its_figures_and_the_results_are_written_after_each_part",),
    ),
    Mutant(
        "gpu-check-input-wait-counts-the-step",
        "scripts/gpu_check.py",
        "wait += seconds(ends[(epoch, i)], following)",
        "wait += seconds(start, ends[(epoch, i)])",
        (f"{GPU_CHECK}::test_input_wait_is_the_share_of_a_step_between_one_batch_end_and_the_next_start",),
    ),
    # ---------------------------------------------------------------- no host sync in a step (issue 24)
    Mutant(
        "training-step-copies-its-loss-to-the-host",
        "ssrl/paradigms/base.py",
        'self.log("train/loss", step.loss)',
        'self.log("train/loss", step.loss.item())',
        ("tests/test_syncs.py",),
    ),
    # ---------------------------------------------------------------- skip means skip (issue 25, case 7)
    Mutant(
        "skip-checks-the-loss-only",
        "ssrl/paradigms/base.py",
        "torch.isfinite(loss.detach()).all() & gradients_finite(parameters)",
        "torch.isfinite(loss.detach()).all()",
        ("tests/test_skip.py",),
    ),
    Mutant(
        "jmi-skip-keeps-the-gradients",
        "ssrl/paradigms/jmi.py",
        "p.grad = None",
        "pass",
        ("tests/test_skip.py",),
    ),
    Mutant(
        "sdmi-skip-keeps-the-gradients",
        "ssrl/paradigms/sdmi.py",
        "            for p in params:\n                p.grad = None",
        "            for p in params:\n                pass",
        ("tests/test_skip.py",),
    ),
    Mutant(
        "skipped-update-keeps-its-batchnorm-statistics",
        "ssrl/paradigms/base.py",
        'SavedStatistics(*(modules if self.cfg.on_nonfinite_loss == "skip" else ()))',
        "SavedStatistics()",
        ("tests/test_skip.py",),
    ),
    Mutant(
        "checkpoint-ignores-the-interval",
        "ssrl/run/callbacks.py",
        "now - self.last >= self.every_s",
        "now >= 0",
        ("tests/test_checkpoints.py::test_checkpoints_fall_on_the_first_check_past_the_interval",),
    ),
    Mutant(
        "stop-never-reads-the-note-at-the-epoch-end",
        "ssrl/paradigms/base.py",
        "    def on_train_epoch_end(self) -> None:\n        self.raise_if_nonfinite()",
        "    def on_train_epoch_end(self) -> None:\n        pass",
        ("tests/test_train.py::test_non_finite_loss_stops_or_skips",),
    ),
    # ---------------------------------------------------------------- batched crops on the device (issue 24)
    Mutant(
        "batched-crop-reads-the-padding-beyond-an-image",
        "ssrl/data/folders.py",
        "[pad[k, :, :h, w] for k, (h, w) in enumerate(sizes)], [pad[k, :, :h, w - 1]",
        "[pad[k, :, :h, w] for k, (h, w) in enumerate(sizes)], [pad[k, :, :h, w] * 0",
        ("tests/test_folders.py::test_batched_crops_reach_each_images_own_edges",),
    ),
    Mutant(
        "batched-crop-half-a-pixel-off",
        "ssrl/data/folders.py",
        "sampling_ratio=-1, aligned=True)",
        "sampling_ratio=-1, aligned=False)",
        ("tests/test_folders.py::test_batched_crops_reach_each_images_own_edges",),
    ),
    Mutant(
        "cuda-path-boxes-from-a-transposed-header",
        "ssrl/data/folders.py",
        "self.boxes(epoch, i, *image_size(path))",
        "self.boxes(epoch, i, *image_size(path)[::-1])",
        ("tests/test_folders.py::test_the_cuda_path_draws_boxes_in_the_workers_and_crops_a_batch_in_one_call",),
    ),
    Mutant(
        "skip-decided-by-each-process-alone",
        "ssrl/distributed.py",
        "dist.all_reduce(agreed, op=dist.ReduceOp.MIN)",
        "dist.all_reduce(agreed, op=dist.ReduceOp.MAX)",
        ("tests/test_skip.py::test_under_ddp_every_process_skips_when_any_gradient_is_non_finite",),
    ),
]

SKIP_ANYWHERE = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv"}
SKIP_AT_ROOT = {"outputs", "data", "lightning_logs"}


def ignore(folder: str, names: list[str]) -> set[str]:
    at_root = Path(folder).resolve() == ROOT
    return {n for n in names if n in SKIP_ANYWHERE or (at_root and n in SKIP_AT_ROOT)}


def copy_tree(destination: Path) -> Path:
    """The working tree (uncommitted changes included), without git data, caches and run outputs."""
    target = destination / "repo"
    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)
    return target


def run_tests(repo: Path, tests: tuple[str, ...], timeout: int) -> tuple[bool, str]:
    """(passed, the last lines of the output)."""
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:warnings"]
    try:
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s"
    tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
    return result.returncode == 0, " | ".join(tail)


def apply(repo: Path, mutant: Mutant) -> None:
    path = repo / mutant.path
    text = path.read_text()
    count = text.count(mutant.original)
    if count != 1:
        raise SystemExit(f"{mutant.name}: the original snippet occurs {count} times in {mutant.path}, not once")
    path.write_text(text.replace(mutant.original, mutant.replacement))


def check_snippets(mutants: list[Mutant]) -> None:
    """Every mutant's snippet is in its file exactly once, before anything runs."""
    for m in mutants:
        count = (ROOT / m.path).read_text().count(m.original)
        if count != 1:
            raise SystemExit(f"{m.name}: the original snippet occurs {count} times in {m.path}, not once")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per pytest run")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated copy")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if args.k in m.name]
    if args.list:
        for m in mutants:
            print(f"{m.name}\n  {m.path}: {m.original!r} -> {m.replacement!r}\n  tests: {' '.join(m.tests)}")
        return 0

    check_snippets(mutants)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ssrl-mutants-") as tmp:
        if not args.no_baseline:
            repo = copy_tree(Path(tmp) / "baseline")
            tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
            passed, tail = run_tests(repo, tests, args.timeout)
            print(f"baseline (unmutated, {len(tests)} test targets): {'passed' if passed else 'FAILED'}  [{tail}]")
            if not passed:
                return 2
        survivors = []
        for m in mutants:
            repo = copy_tree(Path(tmp) / m.name)
            apply(repo, m)
            t0 = time.time()
            passed, tail = run_tests(repo, m.tests, args.timeout)
            verdict = "SURVIVED" if passed else "KILLED"
            print(f"{verdict:8} {m.name}  ({time.time() - t0:.0f} s)  [{tail}]", flush=True)
            if passed:
                survivors.append(m.name)
            shutil.rmtree(repo)
    print(f"\n{len(mutants)} mutants tried, {len(mutants) - len(survivors)} killed, {len(survivors)} survived")
    print(f"wall time {time.time() - started:.0f} s")
    if survivors:
        print("survivors: " + ", ".join(survivors))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
