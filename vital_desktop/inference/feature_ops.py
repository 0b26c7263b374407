"""The two toolkits the feature blocks are written in: numpy primitives and an ONNX graph builder.

Each numpy primitive mirrors one `GraphBuilder` construction (reflect padding, correlation
with a kernel bank, average pooling, grid cell means), so a block written with the one and
the other computes the same numbers (`inference.features` holds the blocks; the tests hold
the two to each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# --- numpy primitives (each mirrors one GraphBuilder construction below) ----------------------


def pad_numpy(x: np.ndarray, half: int) -> np.ndarray:
    """Reflect-pad the two spatial axes of an NCHW array by `half` (mirrors `GraphBuilder.pad`)."""
    return np.pad(x, ((0, 0), (0, 0), (half, half), (half, half)), mode="reflect")


def conv_numpy(x: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Correlate each image of (N, 1, H, W) with K kernels (K, k, k), reflect-padded: (N, K, H, W)."""
    k = kernels.shape[-1]
    half = k // 2
    padded = pad_numpy(x, half)[:, 0]
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    out = np.zeros((n, kernels.shape[0], h, w), dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            weights = kernels[:, dy, dx]
            if not np.any(weights):
                continue
            window = padded[:, dy : dy + h, dx : dx + w]
            out += weights[None, :, None, None] * window[:, None]
    return out


def pool_numpy(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping `factor` x `factor` windows (mirrors `GraphBuilder.pool`)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def grid_numpy(x: np.ndarray, cells: int) -> np.ndarray:
    """Flattened means of a `cells` x `cells` grid per channel (mirrors `GraphBuilder.grid`)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, cells, h // cells, cells, w // cells).mean(axis=(3, 5)).reshape(n, -1)


# --- ONNX graph building -----------------------------------------------------------------------


class GraphBuilder:
    """Collects nodes and initializers of one graph with unique names."""

    def __init__(self, prefix: str = "feat") -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        self._prefix = prefix

    def name(self, base: str) -> str:
        self._count += 1
        return f"{self._prefix}_{base}_{self._count}"

    def const(self, value: Any, base: str = "c") -> str:
        from onnx import numpy_helper

        tensor = numpy_helper.from_array(np.asarray(value), self.name(base))
        self.initializers.append(tensor)
        return tensor.name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = output or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    # composite helpers
    def pad(self, x: str, half: int) -> str:
        pads = np.array([0, 0, half, half, 0, 0, half, half], dtype=np.int64)
        return self.node("Pad", [x, self.const(pads, "pads")], mode="reflect")

    def conv(self, x: str, kernels: np.ndarray) -> str:
        k = kernels.shape[-1]
        weight = kernels.reshape(kernels.shape[0], 1, k, k).astype(np.float32)
        return self.node("Conv", [self.pad(x, k // 2), self.const(weight, "kernel")])

    def separable_conv(self, x: str, kernels: np.ndarray) -> str:
        """`conv` as a horizontal then a vertical pass through the kernels' common row basis.

        Exact (up to float rounding) because the basis spans every kernel row; it pays when the
        rows share few directions (the texture bank: 5 of 7), as the cost falls from k*k to
        about 2*k multiply-adds per output.
        """
        count, k, _ = kernels.shape
        rows = kernels.reshape(-1, k).astype(np.float64)
        _, singular, vt = np.linalg.svd(rows)
        rank = int((singular > singular[0] * 1e-6).sum())
        basis = vt[:rank]
        vertical = (rows @ basis.T).reshape(count, k, rank).transpose(0, 2, 1)
        horizontal = self.node("Conv", [self.pad(x, k // 2),
                                        self.const(basis.reshape(rank, 1, 1, k).astype(np.float32), "rows")])
        return self.node("Conv", [horizontal, self.const(vertical.reshape(count, rank, k, 1).astype(np.float32),
                                                         "columns")])

    def box(self, x: str, size: int) -> str:
        """Mean over a `size` x `size` window (reflect-padded), as two 1-D average pools."""
        padded = self.pad(x, size // 2)
        across = self.node("AveragePool", [padded], kernel_shape=[1, size], strides=[1, 1])
        return self.node("AveragePool", [across], kernel_shape=[size, 1], strides=[1, 1])

    def pool(self, x: str, factor: int) -> str:
        return self.node("AveragePool", [x], kernel_shape=[factor, factor], strides=[factor, factor])

    def grids(self, x: str, height: int, width: int, cells: Sequence[int]) -> list[str]:
        """Flattened cell means for each grid in `cells`: one pass over `x` to the finest grid,
        the coarser grids pooled from it (the sizes divide evenly, so the means are equal)."""
        finest = max(cells)
        kernel = [height // finest, width // finest]
        fine = self.node("AveragePool", [x], kernel_shape=kernel, strides=kernel)
        out = []
        for n in cells:
            step = finest // n
            pooled = fine if step == 1 else self.node("AveragePool", [fine], kernel_shape=[step, step],
                                                      strides=[step, step])
            out.append(self.node("Flatten", [pooled], axis=1))
        return out

    def sum_square(self, x: str, axes: list[int]) -> str:
        return self.node("ReduceSumSquare", [x], axes=axes, keepdims=1)

    def grid(self, x: str, height: int, width: int, cells: int) -> str:
        kernel = [height // cells, width // cells]
        return self.node("Flatten", [self.node("AveragePool", [x], kernel_shape=kernel, strides=kernel)], axis=1)

    def spatial_mean(self, x: str) -> str:
        """(N, C, H, W) → (N, C)."""
        return self.node("Flatten", [self.node("ReduceMean", [x], axes=[2, 3], keepdims=1)], axis=1)

    def scalar(self, value: float) -> str:
        return self.const(np.float32(value), "s")
