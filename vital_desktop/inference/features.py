"""General image representations, computed by ONNX operators and, identically, by numpy.

A registry of feature *blocks* (`BLOCKS`): each block turns the preprocessed NCHW image tensor
into a fixed-length vector, once as an ONNX sub-graph (what ships inside the model file and
what training runs through onnxruntime) and once in numpy (the reference the tests hold the
graph to). The trainer chooses which blocks to use by cross-validation.

- ``gradients``: oriented-gradient histograms (8 unsigned orientations, soft-binned) pooled on
  1x1, 2x2 and 4x4 grids at two image scales, each scale L2-normalised then square-rooted (a
  HOG-style shape descriptor that keeps *where* edges are).
- ``texture``: a filter bank (Laplacian of Gaussian at two widths, four oriented second
  derivatives) at three pyramid levels; per filter the log mean absolute response, its
  sign asymmetry and its peakedness, plus each level's log contrast (rotation-tolerant texture
  statistics).
- ``colour``: per channel mean, spread and an 8-bin soft histogram of the [0, 1] pixel values.
- ``chroma``: the opponent colours red-green and yellow-blue: mean, spread and a 5x5 joint soft
  histogram (zero for a grayscale image).
- ``blobs``: 25 local-contrast statistics (residual after a local blur, blob response,
  gradient and local-energy summaries) suited to small defects on a plain background.

Every block works on any input size whose height and width are multiples of 16. The numpy
primitives and the graph builder the blocks are written in are in `inference.feature_ops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.classifier import PreprocessSpec, run_in_slices, session_options
from vital_desktop.inference.feature_ops import GraphBuilder, conv_numpy, grid_numpy, pool_numpy

OPSET = 17
INPUT_NAME = "image"
FEATURES_NAME = "features"
EPS = 1e-3

# --- the blocks --------------------------------------------------------------------------------


def _gray(batch: np.ndarray) -> np.ndarray:
    return batch.astype(np.float32).mean(axis=1, keepdims=True)


GRADIENT_BINS = 8
GRADIENT_LEVELS = (1, 2)  # image scale factors
GRADIENT_GRIDS = (1, 2, 4)
_DIFF_X = np.array([[[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]]], dtype=np.float32)
_DIFF_Y = np.transpose(_DIFF_X, (0, 2, 1)).copy()
_PHASES = 2 * math.pi * np.arange(GRADIENT_BINS) / GRADIENT_BINS  # doubled angles: unsigned orientation
_COS_SPACING = math.cos(2 * math.pi / GRADIENT_BINS)


def _gradient_names(spec: PreprocessSpec) -> list[str]:
    return [f"grad_s{level}_g{cells}_{i}_{j}_o{b}" for level in GRADIENT_LEVELS for cells in GRADIENT_GRIDS
            for b in range(GRADIENT_BINS) for i in range(cells) for j in range(cells)]


def _orientation_energy_numpy(g: np.ndarray) -> np.ndarray:
    gx = conv_numpy(g, _DIFF_X)
    gy = conv_numpy(g, _DIFF_Y)
    m2 = gx * gx + gy * gy
    c2 = gx * gx - gy * gy
    s2 = 2 * gx * gy
    proj = (c2 * np.cos(_PHASES, dtype=np.float32)[None, :, None, None].astype(np.float32)
            + s2 * np.sin(_PHASES)[None, :, None, None].astype(np.float32)) / (m2 + np.float32(EPS))
    weight = np.maximum(proj - np.float32(_COS_SPACING), 0) * np.float32(1.0 / (1.0 - _COS_SPACING))
    return (weight * np.sqrt(m2)).astype(np.float32)


def gradients_numpy(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    g = _gray(batch)
    out = []
    for level in GRADIENT_LEVELS:
        gl = g if level == 1 else pool_numpy(g, level)
        energy = _orientation_energy_numpy(gl)
        v = np.concatenate([grid_numpy(energy, cells) for cells in GRADIENT_GRIDS], axis=1)
        norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
        out.append(np.sqrt(v / (norm + np.float32(EPS))))
    return np.concatenate(out, axis=1).astype(np.float32)


def gradients_onnx(b: GraphBuilder, x: str, gray: str, spec: PreprocessSpec) -> str:
    """The orientation energy with few full-resolution passes (same numbers as the numpy reference).

    One 3x3 convolution gives gx, gy, gx+gy and gx-gy; their squares hold, linearly,
    c2 = gx²-gy², s2 = 2gxgy = ((gx+gy)²-(gx-gy)²)/2 and m2 = gx²+gy², so one 1x1 convolution
    gives every bin's relu(cos·c2 + sin·s2 - cos_spacing·(m2+eps)) (scaled), which is
    relu(proj - cos_spacing) · (m2+eps) of the reference; one per-pixel factor sqrt(m2)/(m2+eps)
    finishes it. The grids are pooled from the finest one.
    """
    height, width = spec.input_size
    scale = 1.0 / (1.0 - _COS_SPACING)
    pairs = np.stack([_DIFF_X[0], _DIFF_Y[0], _DIFF_X[0] + _DIFF_Y[0], _DIFF_X[0] - _DIFF_Y[0]])
    # squares of (gx, gy, gx+gy, gx-gy) → c2, s2, m2
    c2 = np.array([1.0, -1.0, 0.0, 0.0])
    s2 = np.array([0.0, 0.0, 0.5, -0.5])
    m2 = np.array([1.0, 1.0, 0.0, 0.0])
    mix = np.stack([scale * (math.cos(p) * c2 + math.sin(p) * s2 - _COS_SPACING * m2) for p in _PHASES])
    mix_weight = mix.reshape(GRADIENT_BINS, 4, 1, 1).astype(np.float32)
    mix_bias = np.full(GRADIENT_BINS, -scale * _COS_SPACING * EPS, dtype=np.float32)
    magnitude_weight = m2.reshape(1, 4, 1, 1).astype(np.float32)
    parts = []
    for level in GRADIENT_LEVELS:
        gl = gray if level == 1 else b.pool(gray, level)
        g = b.conv(gl, pairs)
        squares = b.node("Mul", [g, g])
        weight = b.node("Relu", [b.node("Conv", [squares, b.const(mix_weight, "phases"), b.const(mix_bias, "bias")])])
        m = b.node("Conv", [squares, b.const(magnitude_weight, "magnitude")])
        factor = b.node("Div", [b.node("Sqrt", [m]), b.node("Add", [m, b.scalar(EPS)])])
        energy = b.node("Mul", [weight, factor])
        h, w = height // level, width // level
        v = b.node("Concat", b.grids(energy, h, w, GRADIENT_GRIDS), axis=1)
        norm = b.node("Sqrt", [b.node("ReduceSumSquare", [v], axes=[1], keepdims=1)])
        parts.append(b.node("Sqrt", [b.node("Div", [v, b.node("Add", [norm, b.scalar(EPS)])])]))
    return b.node("Concat", parts, axis=1)


def _gaussian_bank(size: int = 7) -> np.ndarray:
    half = size // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    kernels = []

    def second(sigma: float, ux: float, uy: float) -> np.ndarray:
        g = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        u = xx * ux + yy * uy
        k = (u**2 / sigma**4 - 1 / sigma**2) * g
        return k

    for sigma in (1.0, 1.6):
        g = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        kernels.append(((xx**2 + yy**2) / sigma**4 - 2 / sigma**2) * g)
    for angle in (0.0, 45.0, 90.0, 135.0):
        a = math.radians(angle)
        kernels.append(second(1.2, math.cos(a), math.sin(a)))
    out = []
    for k in kernels:
        k = k - k.mean()
        out.append(k / np.abs(k).sum())
    return np.stack(out).astype(np.float32)


TEXTURE_BANK = _gaussian_bank()
TEXTURE_FILTERS = ["log1.0", "log1.6", "d2_0", "d2_45", "d2_90", "d2_135"]
TEXTURE_LEVELS = (1, 2, 4)


def _texture_names(spec: PreprocessSpec) -> list[str]:
    names = []
    for level in TEXTURE_LEVELS:
        for stat in ("log_abs", "asym", "peak"):
            names += [f"tex_s{level}_{f}_{stat}" for f in TEXTURE_FILTERS]
        names.append(f"tex_s{level}_log_contrast")
    return names


def texture_numpy(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    g = _gray(batch)
    out = []
    for level in TEXTURE_LEVELS:
        gl = g if level == 1 else pool_numpy(g, level)
        r = conv_numpy(gl, TEXTURE_BANK)
        a = np.abs(r).mean(axis=(2, 3))
        p = np.maximum(r, 0).mean(axis=(2, 3))
        q = (r * r).mean(axis=(2, 3))
        centred = gl - gl.mean(axis=(2, 3), keepdims=True)
        contrast = np.sqrt((centred * centred).mean(axis=(2, 3)))
        out += [np.log(a + EPS), p / (a + EPS), np.log((q + EPS) / (a * a + EPS)), np.log(contrast + EPS)]
    return np.concatenate(out, axis=1).astype(np.float32)


def texture_onnx(b: GraphBuilder, x: str, gray: str, spec: PreprocessSpec) -> str:
    """Filter-bank statistics: the bank runs separably, and mean |r|, mean r (relu(r) = (r + |r|)/2)
    and mean r² are single-pass reductions (no full-size intermediate but |r|)."""
    eps = b.scalar(EPS)
    parts = []
    for level in TEXTURE_LEVELS:
        gl = gray if level == 1 else b.pool(gray, level)
        height, width = spec.input_size[0] // level, spec.input_size[1] // level
        inverse_area = b.scalar(1.0 / (height * width))
        r = b.separable_conv(gl, TEXTURE_BANK)

        def spatial(op: str, t: str, area: str = inverse_area) -> str:
            return b.node("Mul", [b.node("Flatten", [b.node(op, [t], axes=[2, 3], keepdims=1)], axis=1), area])

        a = spatial("ReduceL1", r)
        mean = b.node("Flatten", [b.node("ReduceMean", [r], axes=[2, 3], keepdims=1)], axis=1)
        p = b.node("Mul", [b.node("Add", [mean, a]), b.scalar(0.5)])
        q = spatial("ReduceSumSquare", r)
        a_eps = b.node("Add", [a, eps])
        level_mean = b.node("ReduceMean", [gl], axes=[2, 3], keepdims=1)
        centred = b.node("Sub", [gl, level_mean])
        contrast = b.node("Sqrt", [spatial("ReduceSumSquare", centred)])
        parts += [
            b.node("Log", [a_eps]),
            b.node("Div", [p, a_eps]),
            b.node("Log", [b.node("Div", [b.node("Add", [q, eps]), b.node("Add", [b.node("Mul", [a, a]), eps])])]),
            b.node("Log", [b.node("Add", [contrast, eps])]),
        ]
    return b.node("Concat", parts, axis=1)


COLOUR_BINS = 8
COLOUR_POOL = 4


def _colour_names(spec: PreprocessSpec) -> list[str]:
    channels = ["gray"] if spec.channels == 1 else ["red", "green", "blue"]
    names = [f"colour_{c}_mean" for c in channels] + [f"colour_{c}_std" for c in channels]
    return names + [f"colour_{c}_hist{b}" for c in channels for b in range(COLOUR_BINS)]


def _unit_pixels(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    std = np.asarray(spec.std, dtype=np.float32).reshape(1, -1, 1, 1)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    return batch.astype(np.float32) * std + mean


_CENTRES = ((np.arange(COLOUR_BINS) + 0.5) / COLOUR_BINS).astype(np.float32)


def colour_numpy(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    x = pool_numpy(_unit_pixels(batch, spec), COLOUR_POOL)
    n = x.shape[0]
    mean = x.mean(axis=(2, 3))
    centred = x - mean[:, :, None, None]
    std = np.sqrt((centred * centred).mean(axis=(2, 3)))
    weights = np.maximum(1 - np.abs(x[:, :, None] - _CENTRES[None, None, :, None, None]) * COLOUR_BINS, 0)
    hist = weights.mean(axis=(3, 4)).reshape(n, -1)
    return np.concatenate([mean, std, hist], axis=1).astype(np.float32)


def colour_onnx(b: GraphBuilder, x: str, gray: str, spec: PreprocessSpec) -> str:
    std = b.const(np.asarray(spec.std, dtype=np.float32).reshape(1, -1, 1, 1), "std")
    mean = b.const(np.asarray(spec.mean, dtype=np.float32).reshape(1, -1, 1, 1), "mean")
    unit = b.pool(b.node("Add", [b.node("Mul", [x, std]), mean]), COLOUR_POOL)
    m = b.node("ReduceMean", [unit], axes=[2, 3], keepdims=1)
    centred = b.node("Sub", [unit, m])
    spread = b.node("Sqrt", [b.spatial_mean(b.node("Mul", [centred, centred]))])
    expanded = b.node("Unsqueeze", [unit, b.const(np.array([2], dtype=np.int64), "ax")])
    distance = b.node("Abs", [b.node("Sub", [expanded, b.const(_CENTRES.reshape(1, 1, -1, 1, 1), "centres")])])
    weights = b.node("Relu", [b.node("Sub", [b.scalar(1.0), b.node("Mul", [distance, b.scalar(float(COLOUR_BINS))])])])
    hist = b.node("Flatten", [b.node("ReduceMean", [weights], axes=[3, 4], keepdims=0)], axis=1)
    return b.node("Concat", [b.node("Flatten", [m], axis=1), spread, hist], axis=1)


CHROMA_BINS = 5
CHROMA_RANGE = 0.5  # opponent values are histogrammed over [-0.5, 0.5]


def _chroma_names(spec: PreprocessSpec) -> list[str]:
    names = ["chroma_rg_mean", "chroma_yb_mean", "chroma_rg_std", "chroma_yb_std"]
    return names + [f"chroma_joint_{i}_{j}" for i in range(CHROMA_BINS) for j in range(CHROMA_BINS)]


_CHROMA_CENTRES = np.linspace(-CHROMA_RANGE, CHROMA_RANGE, CHROMA_BINS).astype(np.float32)
_CHROMA_WIDTH = np.float32(2 * CHROMA_RANGE / (CHROMA_BINS - 1))


def _channel(x: np.ndarray, index: int) -> np.ndarray:
    return x[:, min(index, x.shape[1] - 1) : min(index, x.shape[1] - 1) + 1]


def chroma_numpy(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    x = pool_numpy(_unit_pixels(batch, spec), COLOUR_POOL)
    r, g, b = (_channel(x, i) for i in range(3))
    rg = (r - g)[:, 0]
    yb = ((r + g) * np.float32(0.5) - b)[:, 0]
    n = x.shape[0]
    stats = [rg.mean(axis=(1, 2)), yb.mean(axis=(1, 2)),
             np.sqrt(((rg - rg.mean(axis=(1, 2), keepdims=True)) ** 2).mean(axis=(1, 2))),
             np.sqrt(((yb - yb.mean(axis=(1, 2), keepdims=True)) ** 2).mean(axis=(1, 2)))]
    w1 = np.maximum(1 - np.abs(rg[:, None] - _CHROMA_CENTRES[None, :, None, None]) / _CHROMA_WIDTH, 0)
    w2 = np.maximum(1 - np.abs(yb[:, None] - _CHROMA_CENTRES[None, :, None, None]) / _CHROMA_WIDTH, 0)
    joint = (w1[:, :, None] * w2[:, None, :]).mean(axis=(3, 4)).reshape(n, -1)
    return np.concatenate([np.stack(stats, axis=1), joint], axis=1).astype(np.float32)


def chroma_onnx(b: GraphBuilder, x: str, gray: str, spec: PreprocessSpec) -> str:
    std = b.const(np.asarray(spec.std, dtype=np.float32).reshape(1, -1, 1, 1), "std")
    mean = b.const(np.asarray(spec.mean, dtype=np.float32).reshape(1, -1, 1, 1), "mean")
    unit = b.pool(b.node("Add", [b.node("Mul", [x, std]), mean]), COLOUR_POOL)

    def channel(index: int) -> str:
        i = min(index, spec.channels - 1)
        return b.node("Slice", [unit, b.const(np.array([i], dtype=np.int64), "st"),
                                b.const(np.array([i + 1], dtype=np.int64), "en"),
                                b.const(np.array([1], dtype=np.int64), "ax")])

    r, g, bl = channel(0), channel(1), channel(2)
    rg = b.node("Sub", [r, g])
    yb = b.node("Sub", [b.node("Mul", [b.node("Add", [r, g]), b.scalar(0.5)]), bl])

    def spread(t: str) -> str:
        centred = b.node("Sub", [t, b.node("ReduceMean", [t], axes=[2, 3], keepdims=1)])
        return b.node("Sqrt", [b.spatial_mean(b.node("Mul", [centred, centred]))])

    centres = b.const(_CHROMA_CENTRES.reshape(1, -1, 1, 1), "cc")

    def weights(t: str) -> str:  # (N,1,H,W) → (N,B,H,W)
        distance = b.node("Abs", [b.node("Sub", [t, centres])])
        return b.node("Relu", [b.node("Sub", [b.scalar(1.0), b.node("Div", [distance, b.scalar(float(_CHROMA_WIDTH))])])])

    w1 = b.node("Unsqueeze", [weights(rg), b.const(np.array([2], dtype=np.int64), "ax")])  # (N,B,1,H,W)
    w2 = b.node("Unsqueeze", [weights(yb), b.const(np.array([1], dtype=np.int64), "ax")])  # (N,1,B,H,W)
    joint = b.node("Flatten", [b.node("ReduceMean", [b.node("Mul", [w1, w2])], axes=[3, 4], keepdims=0)], axis=1)
    return b.node("Concat", [b.spatial_mean(rg), b.spatial_mean(yb), spread(rg), spread(yb), joint], axis=1)


# The local-contrast block (the first generation of this product's features).
BLUR_SIZE = 9
BLOB_SIZE = 5
GRID_CELL = 16
RESIDUAL_THRESHOLDS = (0.3, 0.6, 1.0)
BLOB_THRESHOLD_DARK = -0.4
BLOB_THRESHOLD_ANY = 0.2
GRADIENT_THRESHOLD = 1.0
ENERGY_THRESHOLDS = (0.15, 0.3)
BLOB_NAMES = [
    "image_mean", "image_std", "residual_abs_mean", "residual_std", "residual_max", "residual_min",
    *[f"residual_frac_above_{t}" for t in RESIDUAL_THRESHOLDS],
    "blob_min", "blob_max", "blob_frac_dark", "blob_frac_any", "gradient_mean", "gradient_max",
    "gradient_frac_above", "energy_grid_max", "energy_grid_mean", "energy_grid_std",
    *[f"energy_grid_frac_above_{t}" for t in ENERGY_THRESHOLDS],
    "mean_grid_std", "mean_grid_range",
]
_SOBEL_X = np.array([[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]], dtype=np.float32)
_SOBEL_Y = np.transpose(_SOBEL_X, (0, 2, 1)).copy()


def _box_kernel(size: int) -> np.ndarray:
    return np.full((1, size, size), 1.0 / (size * size), dtype=np.float32)


def blobs_numpy(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    x = _gray(batch)
    n = x.shape[0]

    def flat(a: np.ndarray) -> np.ndarray:
        return a.reshape(n, -1)

    residual = x - conv_numpy(x, _box_kernel(BLUR_SIZE))
    abs_residual = np.abs(residual)
    blob = conv_numpy(residual, _box_kernel(BLOB_SIZE))
    gradient = np.sqrt(conv_numpy(x, _SOBEL_X) ** 2 + conv_numpy(x, _SOBEL_Y) ** 2)
    energy = pool_numpy(abs_residual, GRID_CELL)
    means = pool_numpy(x, GRID_CELL)
    columns = [
        flat(x).mean(1), flat(x).std(1), flat(abs_residual).mean(1), flat(residual).std(1),
        flat(residual).max(1), flat(residual).min(1),
        *[(flat(abs_residual) > t).mean(1) for t in RESIDUAL_THRESHOLDS],
        flat(blob).min(1), flat(blob).max(1), (flat(blob) < BLOB_THRESHOLD_DARK).mean(1),
        (np.abs(flat(blob)) > BLOB_THRESHOLD_ANY).mean(1),
        flat(gradient).mean(1), flat(gradient).max(1), (flat(gradient) > GRADIENT_THRESHOLD).mean(1),
        flat(energy).max(1), flat(energy).mean(1), flat(energy).std(1),
        *[(flat(energy) > t).mean(1) for t in ENERGY_THRESHOLDS],
        flat(means).std(1), flat(means).max(1) - flat(means).min(1),
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def blobs_onnx(b: GraphBuilder, x: str, gray: str, spec: PreprocessSpec) -> str:
    from onnx import TensorProto

    axes = [1, 2, 3]

    def reduce(op: str, t: str) -> str:
        return b.node("Flatten", [b.node(op, [t], axes=axes, keepdims=1)], axis=1)

    def mean_of(t: str) -> str:
        return reduce("ReduceMean", t)

    def std_of(t: str, count: int) -> str:
        centred = b.node("Sub", [t, b.node("ReduceMean", [t], axes=axes, keepdims=1)])
        return b.node("Sqrt", [b.node("Mul", [reduce("ReduceSumSquare", centred), b.scalar(1.0 / count)])])

    def frac(t: str, op: str, threshold: float) -> str:
        return mean_of(b.node("Cast", [b.node(op, [t, b.scalar(threshold)])], to=TensorProto.FLOAT))

    height, width = spec.input_size
    area = height * width
    cells = area // (GRID_CELL * GRID_CELL)
    residual = b.node("Sub", [gray, b.box(gray, BLUR_SIZE)])
    abs_residual = b.node("Abs", [residual])
    blob = b.box(residual, BLOB_SIZE)
    sobel = b.conv(gray, np.stack([_SOBEL_X[0], _SOBEL_Y[0]]))
    gradient = b.node("Sqrt", [b.node("ReduceSumSquare", [sobel], axes=[1], keepdims=1)])
    energy = b.pool(abs_residual, GRID_CELL)
    means = b.pool(gray, GRID_CELL)
    columns = [
        mean_of(gray), std_of(gray, area), mean_of(abs_residual), std_of(residual, area),
        reduce("ReduceMax", residual), reduce("ReduceMin", residual),
        *[frac(abs_residual, "Greater", t) for t in RESIDUAL_THRESHOLDS],
        reduce("ReduceMin", blob), reduce("ReduceMax", blob), frac(blob, "Less", BLOB_THRESHOLD_DARK),
        frac(b.node("Abs", [blob]), "Greater", BLOB_THRESHOLD_ANY),
        mean_of(gradient), reduce("ReduceMax", gradient), frac(gradient, "Greater", GRADIENT_THRESHOLD),
        reduce("ReduceMax", energy), mean_of(energy), std_of(energy, cells),
        *[frac(energy, "Greater", t) for t in ENERGY_THRESHOLDS],
        std_of(means, cells), b.node("Sub", [reduce("ReduceMax", means), reduce("ReduceMin", means)]),
    ]
    return b.node("Concat", columns, axis=1)


@dataclass(frozen=True)
class FeatureBlock:
    """One representation: its numpy reference, its ONNX builder and its column names."""

    name: str
    description: str
    numpy: Callable[[np.ndarray, PreprocessSpec], np.ndarray]
    onnx: Callable[[GraphBuilder, str, str, PreprocessSpec], str]
    names: Callable[[PreprocessSpec], list[str]]


BLOCKS: dict[str, FeatureBlock] = {
    block.name: block
    for block in (
        FeatureBlock("gradients", "oriented-gradient histograms, 1/2/4 grids at 2 scales", gradients_numpy,
                     gradients_onnx, _gradient_names),
        FeatureBlock("texture", "filter-bank texture statistics at 3 scales", texture_numpy, texture_onnx,
                     _texture_names),
        FeatureBlock("colour", "per-channel mean, spread and histogram", colour_numpy, colour_onnx, _colour_names),
        FeatureBlock("chroma", "opponent-colour mean, spread and joint histogram", chroma_numpy, chroma_onnx,
                     _chroma_names),
        FeatureBlock("blobs", "local-contrast (residual, blob, energy) statistics", blobs_numpy, blobs_onnx,
                     lambda spec: list(BLOB_NAMES)),
    )
}


def check_blocks(blocks: Sequence[str], spec: PreprocessSpec) -> list[str]:
    """The blocks in registry order; raises ValidationError for an unknown block or an unusable size."""
    unknown = [name for name in blocks if name not in BLOCKS]
    if unknown or not blocks:
        raise ValidationError(f"unknown feature block(s) {unknown}; known: {', '.join(BLOCKS)}")
    height, width = spec.input_size
    if height % 16 or width % 16:
        raise ValidationError(f"input size {height}x{width} must be a multiple of 16 for the feature blocks")
    return [name for name in BLOCKS if name in blocks]


def feature_names(blocks: Sequence[str], spec: PreprocessSpec) -> list[str]:
    """Column names of the concatenated blocks."""
    return [n for name in check_blocks(blocks, spec) for n in BLOCKS[name].names(spec)]


def block_slices(blocks: Sequence[str], spec: PreprocessSpec) -> dict[str, slice]:
    """Where each block's columns sit in the concatenated vector."""
    out, start = {}, 0
    for name in check_blocks(blocks, spec):
        width = len(BLOCKS[name].names(spec))
        out[name] = slice(start, start + width)
        start += width
    return out


def compute_features_numpy(batch: np.ndarray, spec: PreprocessSpec, blocks: Sequence[str]) -> np.ndarray:
    """The reference feature vectors (N, F) of a preprocessed NCHW batch."""
    return np.concatenate([BLOCKS[name].numpy(batch, spec) for name in check_blocks(blocks, spec)], axis=1)


def build_feature_graph(spec: PreprocessSpec, blocks: Sequence[str], output_name: str = FEATURES_NAME) -> Any:
    """An ONNX model from the image tensor (input ``image``) to the concatenated features."""
    import onnx
    from onnx import TensorProto, helper

    names = check_blocks(blocks, spec)
    b = GraphBuilder()
    gray = b.node("ReduceMean", [INPUT_NAME], axes=[1], keepdims=1)
    parts = [BLOCKS[name].onnx(b, INPUT_NAME, gray, spec) for name in names]
    b.node("Concat", parts, output_name, axis=1)
    height, width = spec.input_size
    graph = helper.make_graph(
        b.nodes, "vital_image_features",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", spec.channels, height, width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", len(feature_names(names, spec))])],
        initializer=b.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


class FeatureExtractor:
    """The feature graph held in one onnxruntime session (the training path: same ops as served)."""

    def __init__(self, spec: PreprocessSpec, blocks: Sequence[str], *, threads: int = 2) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.blocks = check_blocks(blocks, spec)
        model = build_feature_graph(spec, self.blocks)
        self.session = ort.InferenceSession(model.SerializeToString(),
                                            sess_options=session_options(threads, layout_optimisation=False),
                                            providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (out,) = run_in_slices(self.session, [FEATURES_NAME], INPUT_NAME, batch)
        return np.asarray(out, dtype=np.float32)
