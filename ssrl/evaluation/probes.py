"""Evaluation of frozen backbone features: a linear probe and a weighted kNN classifier."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def extract_features(
    backbone: nn.Module, batches: Iterable, prepare: Callable[[Tensor], Tensor], device: torch.device
) -> tuple[Tensor, Tensor]:
    """Backbone features (N, F), float32, and labels (N,) of every batch of uint8 images, in eval mode, on
    ``device`` (the probes and kNN then run there)."""
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    for images, y in batches:
        feats.append(backbone(prepare(images.to(device))).float())
        labels.append(torch.as_tensor(y).to(device))
    backbone.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def linear_probe_predictions(
    train: tuple[Tensor, Tensor], scored: dict[str, Tensor], max_iter: int = 1000, tolerance: float = 1e-6
) -> dict[str, Tensor]:
    """Multinomial logistic regression on standardised features, in torch on the features' device: the
    standardisation (mean, population std; a constant feature is left unscaled) and the classifier are fit
    on ``train`` only, then each feature matrix in ``scored`` gets its predicted classes.

    The objective is scikit-learn's LogisticRegression at C = 1 (its default), divided by N:
    mean_i CE(W x_i + b, y_i) + ||W||^2 / (2 N), the bias unpenalised, minimised by full-batch L-BFGS
    (strong-Wolfe line search) until the largest gradient entry is below ``tolerance`` or ``max_iter``
    iterations. It agrees with scikit-learn's probe on styled digits' test split (docs/method.md,
    "Evaluation on the run's device")."""
    x, y = train
    mean, std = x.mean(0), x.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = (x - mean) / std
    classes = int(y.max()) + 1
    weight = torch.zeros(x.shape[1], classes, device=x.device, requires_grad=True)
    bias = torch.zeros(classes, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, tolerance_grad=tolerance, tolerance_change=0, line_search_fn="strong_wolfe"
    )

    def objective() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + weight.pow(2).sum() / (2 * len(y))
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    with torch.no_grad():
        return {name: (((z - mean) / std) @ weight + bias).argmax(1) for name, z in scored.items()}


def linear_probe_accuracy(
    train: tuple[Tensor, Tensor], scored: dict[str, tuple[Tensor, Tensor]], max_iter: int = 1000
) -> dict[str, float]:
    """Accuracy of ``linear_probe_predictions`` on each (features, labels) of ``scored``."""
    predicted = linear_probe_predictions(train, {name: x for name, (x, _) in scored.items()}, max_iter)
    return {name: float((predicted[name] == y).double().mean()) for name, (_, y) in scored.items()}


def knn_predict(train: tuple[Tensor, Tensor], test: Tensor, k: int, temperature: float, chunk: int = 1024) -> Tensor:
    """Weighted kNN (Wu et al., 2018): the k nearest training features by cosine similarity s vote for
    their class with weight exp(s / temperature); the class with the largest total wins."""
    xtr, ytr = F.normalize(train[0], dim=1), train[1]
    num_classes = int(ytr.max()) + 1
    k = min(k, len(ytr))
    predictions = []
    for start in range(0, len(test), chunk):
        x = F.normalize(test[start : start + chunk], dim=1)
        sim, idx = (x @ xtr.T).topk(k, dim=1)
        votes = torch.zeros(len(x), num_classes, device=x.device)
        votes.scatter_add_(1, ytr[idx], torch.exp(sim / temperature))
        predictions.append(votes.argmax(1))
    return torch.cat(predictions)


def knn_accuracy(
    train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], k: int, temperature: float, chunk: int = 1024
) -> float:
    """Accuracy of ``knn_predict`` on ``test`` (features, labels)."""
    return int((knn_predict(train, test[0], k, temperature, chunk) == test[1]).sum()) / len(test[1])


def bits(correct: Tensor) -> str:
    """Per-image correctness (N,) of bools as a string of "0"/"1", image i at position i (the test split's
    fixed order): what ssrl.analysis.accuracy.correctness reads back."""
    return "".join("1" if c else "0" for c in correct.tolist())


def extract_splits(
    backbone: nn.Module, loaders: dict[str, Iterable], prepare: Callable[[Tensor], Tensor], device: torch.device
) -> dict[str, tuple[Tensor, Tensor]]:
    """``extract_features`` of every split in ``loaders``, once each: {"labeled": (x, y), "val": ..., ...}."""
    return {name: extract_features(backbone, batches, prepare, device) for name, batches in loaders.items()}


def evaluate_features(features: dict[str, tuple[Tensor, Tensor]], cfg: Any) -> dict[str, dict[str, Any]]:
    """Linear-probe and kNN accuracy, fit on ``features["labeled"]`` and scored on each other split, with
    each image's correctness (``bits``) in the split's order:
    {"val": {"probe_acc", "knn_acc", "probe_correct", "knn_correct"}, "test": {...}}."""
    scored = {name: f for name, f in features.items() if name != "labeled"}
    fit = features["labeled"]
    probe = linear_probe_predictions(fit, {name: x for name, (x, _) in scored.items()})
    results = {}
    for name, (x, y) in scored.items():
        right = {"probe": probe[name] == y, "knn": knn_predict(fit, x, cfg.knn_k, cfg.knn_temperature) == y}
        results[name] = {f"{kind}_acc": float(c.double().mean()) for kind, c in right.items()}
        results[name].update({f"{kind}_correct": bits(c) for kind, c in right.items()})
    return results


def evaluate_backbone(
    backbone: nn.Module,
    loaders: dict[str, Iterable],
    prepare: Callable[[Tensor], Tensor],
    device: torch.device,
    cfg: Any,
) -> dict[str, dict[str, Any]]:
    """``evaluate_features`` of the frozen backbone's features of ``loaders`` (extracted once each)."""
    return evaluate_features(extract_splits(backbone, loaders, prepare, device), cfg)
