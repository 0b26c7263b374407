"""Confidence that means what it says: temperature scaling, expected calibration error, reliability.

A linear head's probabilities are ``softmax(logits)``; temperature scaling divides the logits
by one number T fitted (minimum negative log-likelihood) on out-of-fold logits, so it changes
how sure the model is without changing what it predicts. Because the head is linear, dividing
its weights and intercepts by T bakes the calibration into the exported ONNX file: the
probabilities a site sees (and bulk approval thresholds) are the calibrated ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 10


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, target: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.clip(probabilities[np.arange(len(target)), target], 1e-12, 1.0)
    return float(-np.log(p).mean())


def fit_temperature(logits: np.ndarray, target: np.ndarray) -> float:
    """The temperature in [0.05, 20] minimising the NLL of `target` under softmax(logits / T)."""
    from scipy.optimize import minimize_scalar

    if len(target) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(softmax(logits, float(np.exp(log_t))), target),
        bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def reliability(probabilities: np.ndarray, target: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """Expected calibration error (top-label, equal-width bins) and the reliability curve."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(target)).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    curve = []
    ece = 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count:
            gap = abs(float(correct[members].mean()) - float(confidence[members].mean()))
            ece += gap * count / max(1, len(target))
            curve.append({"bin": [round(float(edges[b]), 2), round(float(edges[b + 1]), 2)], "count": count,
                          "confidence": round(float(confidence[members].mean()), 4),
                          "accuracy": round(float(correct[members].mean()), 4)})
    return {"ece": round(float(ece), 4), "bins": bins, "items": len(target), "curve": curve}
