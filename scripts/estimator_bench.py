"""Estimators against the truth on correlated Gaussians of known MI.

For each batch size N and each true MI of the staircase, every estimator is evaluated with the
analytic optimal critic T* (DV with T*, NWJ with T* + 1, InfoNCE with T*) and with a separable critic
trained by that estimator (JSD's trained critic is read through DV, as its own value is not in nats).
Writes a Markdown table and a plot (estimate vs true MI, with the log N line of InfoNCE).

With --probe, the MI probe (ssrl.mi.probe) instead: each of its critics trained on n_train pairs and
scored on 288 val pairs in batches of N = 128, D = 128 (the default job's sizes: styled digits' 1149
train and 288 val images, data.batch_size, backbone.projector_dim), the MI spread over all D dimensions
or confined to a random 8-dimensional subspace, and constant embeddings; mean ± std over --repeats draws.

    python scripts/estimator_bench.py                      # writes docs/estimator_bench.{md,png}
    python scripts/estimator_bench.py --steps 300 --repeats 5 --out /tmp/bench   # a quick look
    python scripts/estimator_bench.py --probe --repeats 5  # writes docs/mi_probe_bench.md
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from ssrl.mi import gaussian
from ssrl.mi.estimators import ESTIMATORS
from ssrl.mi.probe import BUDGET, CRITICS, mi_probe


def stats(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def optimal(estimator: str, n: int, d: int, rho: float, repeats: int, g: torch.Generator) -> tuple[float, float]:
    shift = 1.0 if estimator == "nwj" else 0.0  # NWJ is tight at T* + 1
    values = []
    for _ in range(repeats):
        x, y = gaussian.sample(n, d, rho, g)
        values.append(float(gaussian.in_nats(estimator, gaussian.optimal_scores(x, y, rho) + shift)))
    return stats(values)


@torch.no_grad()
def trained(critic: torch.nn.Module, estimator: str, n: int, d: int, rho: float, repeats: int, g: torch.Generator):
    values = []
    for _ in range(repeats):
        x, y = gaussian.sample(n, d, rho, g)
        values.append(float(gaussian.in_nats(estimator, critic(x, y))))
    return stats(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--mi", type=float, nargs="+", default=[2, 4, 6, 8, 10])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each critic")
    parser.add_argument("--repeats", type=int, default=20, help="evaluation batches per estimate")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--probe", action="store_true", help="bench the MI probe's critics instead")
    parser.add_argument("--train-pairs", type=int, nargs="+", default=[1149, 8192], help="--probe: n_train")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.probe:
        probe_bench(args)
        return
    g = torch.Generator().manual_seed(0)
    names = list(ESTIMATORS)
    rows = []
    start = time.time()
    for n in args.batch:
        for mi in args.mi:
            rho = gaussian.rho_for(mi, args.dim)
            row = {"N": n, "true": mi}
            for name in names:
                if name != "jsd":
                    row[f"{name} T*"] = optimal(name, n, args.dim, rho, args.repeats, g)
                critic = gaussian.train_critic(name, args.dim, rho, n, args.steps)
                row[f"{name} trained"] = trained(critic, name, n, args.dim, rho, args.repeats, g)
            rows.append(row)
            print(
                f"N={n} MI={mi}: " + ", ".join(f"{k} {v[0]:.2f}" for k, v in row.items() if isinstance(v, tuple)),
                flush=True,
            )
    columns = [c for c in rows[0] if c not in ("N", "true")]
    lines = [
        f"# Estimators on correlated Gaussians (d = {args.dim})",
        "",
        f"Command: `python scripts/estimator_bench.py --steps {args.steps} --repeats {args.repeats}`; "
        f"{time.time() - start:.0f} s on this machine. Mean ± std over {args.repeats} fresh batches of N pairs; "
        f"trained critics: separable MLPs, Adam 5e-4, {args.steps} steps. InfoNCE's ceiling is log N "
        f"(log 64 = {math.log(64):.2f}, log 512 = {math.log(512):.2f}). JSD is read through DV of its critic.",
        "",
        "| N | true MI | " + " | ".join(columns) + " |",
        "| --- | --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for row in rows:
        cells = " | ".join(f"{row[c][0]:.2f} ± {row[c][1]:.2f}" for c in columns)
        lines.append(f"| {row['N']} | {row['true']:g} | {cells} |")
    (args.out / "estimator_bench.md").write_text("\n".join(lines) + "\n")
    plot(rows, names, args)
    print(f"wrote {args.out / 'estimator_bench.md'} and {args.out / 'estimator_bench.png'}")


PROBE_D, PROBE_N, PROBE_VAL, SUBSPACE = 128, 128, 288, 8


def probe_pairs(n: int, mi: float, informative: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs in PROBE_D dimensions holding ``mi`` nats: correlated Gaussians (gaussian.sample) in
    ``informative`` dimensions, independent N(0, 1) in the rest, all turned by one fixed random rotation."""
    rho = gaussian.rho_for(mi, informative) if mi > 0 else 0.0
    x, y = gaussian.sample(n, informative, rho, g)
    noise = [torch.randn(n, PROBE_D - informative, generator=g) for _ in range(2)]
    rotation = torch.linalg.qr(torch.randn(PROBE_D, PROBE_D, generator=torch.Generator().manual_seed(9)))[0]
    return torch.cat([x, noise[0]], 1) @ rotation, torch.cat([y, noise[1]], 1) @ rotation


def probe_bench(args: argparse.Namespace) -> None:
    start = time.time()
    cases = [(mi, PROBE_D) for mi in [0.0, *args.mi]] + [(mi, SUBSPACE) for mi in args.mi]
    columns = [f"{critic} {name}" for critic in CRITICS for name in ("dv", "infonce")]
    lines = []
    for n_train in args.train_pairs:
        lines += [
            "",
            f"n_train = {n_train} train pairs; {PROBE_VAL} val pairs, N = {PROBE_N}, D = {PROBE_D}",
            "",
            "| MI in | true MI | " + " | ".join(columns) + " |",
            "| --- | --- | " + " | ".join("---" for _ in columns) + " |",
        ]
        for mi, informative in cases + [(None, PROBE_D)]:
            draws: dict[str, list[float]] = {c: [] for c in columns}
            for r in range(args.repeats):
                g = torch.Generator().manual_seed(1000 * r + int(10 * (mi or 0)) + informative)
                if mi is None:  # a collapsed run: one embedding for every input
                    constant = torch.randn(1, PROBE_D, generator=g)
                    train = (constant.expand(n_train, -1), constant.expand(n_train, -1))
                    val = (constant.expand(PROBE_VAL, -1), constant.expand(PROBE_VAL, -1))
                else:
                    train, val = probe_pairs(n_train, mi, informative, g), probe_pairs(PROBE_VAL, mi, informative, g)
                for critic in CRITICS:
                    result = mi_probe(train, val, PROBE_N, critic, seed=r)
                    for name, value in result.items():
                        draws[f"{critic} {name}"].append(value)
            where = (
                "constant embeddings"
                if mi is None
                else ("all D dims" if informative == PROBE_D else f"{informative} of D dims, rotated")
            )
            cells = " | ".join("{:.2f} ± {:.2f}".format(*stats(draws[c])) for c in columns)
            lines.append(f"| {where} | {0 if mi is None else mi:g} | {cells} |")
            print(lines[-1], flush=True)
    b = BUDGET
    head = [
        "# The MI probe on correlated Gaussians",
        "",
        f"Command: `python scripts/estimator_bench.py --probe --repeats {args.repeats} --train-pairs "
        f"{' '.join(map(str, args.train_pairs))}`; {time.time() - start:.0f} s on this machine. Mean ± std over "
        f"{args.repeats} draws of the data (and critic seeds). Critics as in ssrl/mi/probe.py: {b.steps} Adam steps "
        f"on -InfoNCE, batches of N, lr {b.lr_scale} (log-scale, from 1/{b.init_temperature}), {b.lr_projection} "
        f"(projections, from the identity); scored over {b.val_permutations} permutations of the val pairs. "
        f"InfoNCE's ceiling is log N = {math.log(PROBE_N):.2f}.",
    ]
    (args.out / "mi_probe_bench.md").write_text("\n".join(head + lines) + "\n")
    print(f"wrote {args.out / 'mi_probe_bench.md'}")


def plot(rows: list[dict], names: list[str], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.batch), figsize=(6 * len(args.batch), 4.5), squeeze=False)
    colors = dict(zip(names, ["C0", "C1", "C2", "C3"], strict=True))
    for ax, n in zip(axes[0], args.batch, strict=True):
        part = [r for r in rows if r["N"] == n]
        truth = [r["true"] for r in part]
        ax.plot(truth, truth, "k-", lw=1, label="true MI")
        ax.axhline(math.log(n), color="grey", ls=":", label=f"log N = {math.log(n):.2f}")
        for name in names:
            for kind, style in (("trained", "-o"), ("T*", "--x")):
                key = f"{name} {kind}"
                if key in part[0]:
                    means = [r[key][0] for r in part]
                    stds = [r[key][1] for r in part]
                    ax.errorbar(truth, means, yerr=stds, fmt=style, color=colors[name], label=key, capsize=2)
        ax.set_title(f"N = {n}")
        ax.set_xlabel("true MI (nats)")
        ax.set_ylabel("estimate (nats)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "estimator_bench.png", dpi=120)


if __name__ == "__main__":
    main()
