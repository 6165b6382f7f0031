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
    """Backbone features (N, F) and labels (N,) of every batch of uint8 images, in eval mode."""
    was_training = backbone.training
    backbone.eval()
    feats, labels = [], []
    for images, y in batches:
        feats.append(backbone(prepare(images.to(device))).float().cpu())
        labels.append(torch.as_tensor(y).cpu())
    backbone.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def linear_probe_predictions(
    train: tuple[Tensor, Tensor], scored: dict[str, Tensor], max_iter: int = 1000
) -> dict[str, Tensor]:
    """Multinomial logistic regression (scikit-learn, L-BFGS, C = 1) on standardised features: the
    scaler and the classifier are fit on ``train`` only; the predicted class of each row of each
    feature matrix in ``scored``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    probe.fit(train[0].numpy(), train[1].numpy())
    return {name: torch.as_tensor(probe.predict(x.numpy())) for name, x in scored.items()}


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
        votes = torch.zeros(len(x), num_classes).scatter_add_(1, ytr[idx], torch.exp(sim / temperature))
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


def evaluate_backbone(
    backbone: nn.Module,
    loaders: dict[str, Iterable],
    prepare: Callable[[Tensor], Tensor],
    device: torch.device,
    cfg: Any,
) -> dict[str, dict[str, Any]]:
    """Linear-probe and kNN accuracy of the frozen backbone, fit on ``loaders["labeled"]`` and scored on
    each other split, with each image's correctness (``bits``) in the loader's order:
    {"val": {"probe_acc", "knn_acc", "probe_correct", "knn_correct"}, "test": {...}}."""
    features = {name: extract_features(backbone, batches, prepare, device) for name, batches in loaders.items()}
    fit = features.pop("labeled")
    probe = linear_probe_predictions(fit, {name: x for name, (x, _) in features.items()})
    results = {}
    for name, (x, y) in features.items():
        right = {"probe": probe[name] == y, "knn": knn_predict(fit, x, cfg.knn_k, cfg.knn_temperature) == y}
        results[name] = {f"{kind}_acc": float(c.double().mean()) for kind, c in right.items()}
        results[name].update({f"{kind}_correct": bits(c) for kind, c in right.items()})
    return results
