"""A walk through "Convolutional Neural Networks: An Intuitive Primer" with tinygrad_cnn.

The article (28 May 2019, part 2 of a "Neural Networks" series) builds a convolutional layer by hand
with numpy and scipy.signal: a FeatureMap, a MaxPoolingMap and a FullyConnectedLayer, each with
a hand-derived backward pass. Here every forward pass is one tensor expression, autograd derives
the backward pass, and we check that it gives the article's numbers and formulas.

Run it from the repository root:

    python examples/article_walkthrough.py

Each section is a function that returns the numbers it prints, so that tests/test_article.py can
check them. The sections follow the article:

    (a) parameter counts           (e) FeatureMap: autograd vs the article's gradients
    (b) the size of a feature map  (f) MaxPoolingMap: forward and backward routing
    (c) Appendix A: valid vs full  (g) FullyConnectedLayer: autograd vs the article's gradients
    (d) Appendix B: the stack of pancakes
    (h) the code listing: the article's classes next to the same classes with autograd
    (i) chaining convolutional layers: the 3-D backward recipe vs autograd

Where the article slips, the script says so and shows the corrected form: the feature-map size
"(M-I+1)x(J-N+1)" is (M-I+1)x(N-J+1); Appendix B's `signal.sp.correlate` is
`scipy.signal.correlate`; `xrange` (Python 2) is `range`; and the listing calls
`propagate_backward` before `feed_forward`, which has to come first.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import signal

try:
    import tinygrad_cnn  # noqa: F401  (installed, or run with the repository root on sys.path)
except ModuleNotFoundError:  # `python examples/article_walkthrough.py` puts examples/ on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor

# The article's own inputs (from its code listing at the end).
INPUT_DATA = np.arange(20).reshape(4, 5)  # a 4x5 input
OVERLAY_SHAPE = (2, 2)
MAX_POOL_INPUT_DATA = np.array(
    [[8, 0, 11, 1, 6], [10, 2, 4, 14, 17], [5, 16, 19, 15, 7], [12, 13, 9, 18, 3]]
)


def to_int(t: Tensor | np.ndarray) -> np.ndarray:
    """The article prints integers. Our results are floats that hold whole numbers exactly;
    convert them, refusing (rather than rounding) anything that is not a whole number."""
    values = np.asarray(t)
    whole = values.astype(np.int64)
    if not np.array_equal(whole, values):
        raise ValueError(f"expected whole numbers, got {values}")
    return whole


# ---- (a) parameter counts -------------------------------------------------------------------

def parameter_counts() -> dict:
    """A 28x28 MNIST image, fully connected to 30 hidden neurons, against 16 feature maps that
    each share one 4x4 overlay of weights and one bias."""
    fc_weights = 28 * 28 * 30
    fc_parameters = fc_weights + 30  # plus one bias per hidden neuron
    # One feature map: correlate the 28x28 input with a 4x4 overlay (zeros: only the shape matters).
    feature_map = F.correlate2d(np.zeros((28, 28)), np.zeros((4, 4)), mode="valid")
    conv_parameters = 16 * (4 * 4 + 1)  # 16 feature maps x (16 shared weights + 1 shared bias)
    return {
        "fc_weights": fc_weights,                 # 23,520
        "fc_parameters": fc_parameters,           # 23,550
        "feature_map_shape": feature_map.shape,   # (25, 25)
        "conv_parameters": conv_parameters,       # 272
    }


# ---- (b) the size of a feature map ----------------------------------------------------------

def feature_map_size() -> dict:
    """An M x N input and an I x J overlay (stride 1) give an (M-I+1) x (N-J+1) feature map.

    The article writes "(M-I+1)x(J-N+1)": a slip. For its own example, a 4x5 input and a 2x2
    overlay, that formula gives 3 x -2; the map is 3 x 4, as the article then says.
    """
    (M, N), (I, J) = INPUT_DATA.shape, OVERLAY_SHAPE
    feature_map = F.correlate2d(INPUT_DATA, np.zeros(OVERLAY_SHAPE), mode="valid")
    # The article's chaining section: a 7x3 matrix correlated with a 2x3 one gives 6x1.
    narrow = F.correlate2d(np.zeros((7, 3)), np.zeros((2, 3)), mode="valid")
    return {
        "shape": feature_map.shape,                  # (3, 4), computed
        "formula": (M - I + 1, N - J + 1),           # (3, 4), the corrected formula
        "article_formula": (M - I + 1, J - N + 1),   # (3, -2), the article's slip
        "narrow_shape": narrow.shape,                # (6, 1)
    }


# ---- (c) Appendix A: valid vs full mode -----------------------------------------------------

def appendix_a() -> dict:
    """The article's REPL session, with F.correlate2d / F.convolve2d in place of
    scipy.signal.correlate2d / convolve2d (which they equal for 2-D inputs)."""
    values = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    f = np.array([[10, 20], [30, 40]])
    f_rot180 = np.rot90(np.rot90(f))  # rotate the filter by 180 degrees
    return {
        "correlate_valid": to_int(F.correlate2d(values, f, mode="valid")),
        "convolve_valid": to_int(F.convolve2d(values, f, mode="valid")),
        "f_rot180": f_rot180,
        "correlate_rot180_valid": to_int(F.correlate2d(values, f_rot180, mode="valid")),
        "correlate_full": to_int(F.correlate2d(values, f, mode="full")),
        "convolve_full": to_int(F.convolve2d(values, f, mode="full")),
        "correlate_rot180_full": to_int(F.correlate2d(values, f_rot180, mode="full")),
    }


# ---- (d) Appendix B: summing 2-D vs a 3-D stack ---------------------------------------------

def appendix_b() -> dict:
    """Two 2-D correlations added together equal one correlation of the stacked inputs with the
    stacked filters (the "stack of pancakes"). A kernel of shape (C, kh, kw) sums over the
    channel axis -3 of x, so the 3-D correlation gives the 2-D map directly."""
    feature_map1 = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    feature_map2 = np.array([[9, 8, 7], [6, 5, 4], [3, 2, 1]])
    filter1 = np.array([[1, 2], [3, 4]])
    filter2 = np.array([[5, 6], [7, 8]])

    result1 = F.correlate2d(feature_map1, filter1, mode="valid")
    result2 = F.correlate2d(feature_map2, filter2, mode="valid")
    sum_of_results = result1 + result2

    feature_maps_stacked = np.array([feature_map1, feature_map2])  # (2, 3, 3)
    filters_stacked = np.array([filter1, filter2])                  # (2, 2, 2)
    stacked_results = F.correlate2d(feature_maps_stacked, filters_stacked, mode="valid")  # (2, 2)

    # The article calls `signal.sp.correlate`, a slip for scipy.signal.correlate, whose 3-D
    # valid result has shape (1, 2, 2): hence its .reshape(2, 2).
    scipy_stacked = signal.correlate(feature_maps_stacked, filters_stacked, mode="valid")
    return {
        "result1": to_int(result1),                 # [[37, 47], [67, 77]]
        "result2": to_int(result2),                 # [[175, 149], [97, 71]]
        "sum_of_results": to_int(sum_of_results),   # [[212, 196], [164, 148]]
        "stacked_results": to_int(stacked_results),
        "scipy_stacked": scipy_stacked.reshape(2, 2),
    }


# ---- the article's helper functions (numpy), used by the hand-written gradients --------------

def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    return sigmoid(z) * (1 - sigmoid(z))


def dc_db(z: np.ndarray, dc_da: np.ndarray) -> np.ndarray:
    return sigmoid_prime(z) * dc_da


def _comparison(inputs: dict, a: np.ndarray, autograd: dict, article: dict) -> dict:
    """What sections (e) and (g) return: the inputs, the activation, both sets of gradients and
    the largest difference between them per parameter."""
    return {"inputs": inputs, "a": a, "autograd": autograd, "article": article,
            "max_abs_diff": {name: float(np.max(np.abs(autograd[name] - article[name]))) for name in article}}


# ---- (e) FeatureMap ------------------------------------------------------------------------

def feature_map_gradients(seed: int = 0) -> dict:
    """The article's FeatureMap forward pass as one tensor expression,

        z = correlate2d(a_prev, w, "valid") + b,   a = sigmoid(z),

    then `a.backward(a_gradient)` with ∂C/∂a from the next layer. Autograd's gradients of b, w
    and a_prev are compared with the article's hand-written formulas, computed with scipy.

    The 4x5 input and 2x2 overlay are the article's. Its input np.arange(20) would saturate
    the sigmoid (z of order ±20, σ'(z) of order 1e-9), so every gradient would be nearly 0 and
    the comparison would prove little; we draw standard-normal activations instead.
    """
    rng = np.random.default_rng(seed)
    a_prev = rng.standard_normal(INPUT_DATA.shape)
    w = rng.standard_normal(OVERLAY_SHAPE)
    b = rng.standard_normal((1, 1))
    a_gradient = rng.standard_normal((3, 4))  # ∂C/∂a, one value per feature neuron

    # Autograd: write the forward pass, get the backward pass.
    a_prev_t = Tensor(a_prev, requires_grad=True, dtype=np.float64)
    w_t = Tensor(w, requires_grad=True, dtype=np.float64)
    b_t = Tensor(b, requires_grad=True, dtype=np.float64)
    z_t = F.correlate2d(a_prev_t, w_t, mode="valid") + b_t
    a_t = F.sigmoid(z_t)
    a_t.backward(a_gradient)
    autograd = {"b": b_t.grad.data, "w": w_t.grad.data, "a_prev": a_prev_t.grad.data}

    # The article's propagate_backward, line by line (scipy).
    z = signal.correlate2d(a_prev, w, mode="valid") + b
    b_gradient_components = dc_db(z, a_gradient)
    article = {
        "b": signal.correlate2d(sigmoid_prime(z), a_gradient, mode="valid"),
        "w": signal.correlate2d(a_prev, b_gradient_components, mode="valid"),
        "a_prev": signal.convolve2d(w, b_gradient_components, mode="full"),
    }
    return _comparison({"a_prev": a_prev, "w": w, "b": b, "a_gradient": a_gradient}, a_t.data, autograd, article)


# ---- (f) MaxPoolingMap ---------------------------------------------------------------------
# The article's loop code, re-implemented in Python 3: the article uses `xrange`, which is
# Python 2; in Python 3 it is `range`. Otherwise the code is the article's.

def get_feature_map_shape(input_data_shape, overlay_shape):
    input_num_rows, input_num_cols = input_data_shape
    overlay_num_rows, overlay_num_cols = overlay_shape
    num_offsets_for_row = input_num_rows - overlay_num_rows + 1
    num_offsets_for_col = input_num_cols - overlay_num_cols + 1
    return (num_offsets_for_row, num_offsets_for_col)


def get_max_value_position(matrix):
    max_value_index = matrix.argmax()
    return np.unravel_index(max_value_index, matrix.shape)


def max_values_and_positions(a_prev, overlay_shape):
    feature_map_shape = get_feature_map_shape(a_prev.shape, overlay_shape)
    max_values = np.zeros(feature_map_shape)
    max_positions = np.zeros(feature_map_shape, dtype=object)

    overlay_num_rows, overlay_num_cols = overlay_shape
    feature_map_rows, feature_map_cols = feature_map_shape
    for r in range(feature_map_rows):
        for c in range(feature_map_cols):
            overlay = a_prev[r:r + overlay_num_rows, c:c + overlay_num_cols]
            max_value = np.amax(overlay)
            max_value_overlay_row, max_value_overlay_col = get_max_value_position(overlay)
            max_value_row = r + max_value_overlay_row
            max_value_col = c + max_value_overlay_col

            max_values[r][c] = max_value
            max_positions[r][c] = (max_value_row, max_value_col)

    return (max_values, max_positions)


def max_pooling_propagate_backward(a_prev, max_values, max_positions, a_gradient):
    """MaxPoolingMap.propagate_backward from the article."""
    a_prev_gradient = np.zeros(a_prev.shape)

    rows, cols = max_values.shape
    for r in range(rows):
        for c in range(cols):
            max_position = max_positions[r][c]
            a_prev_gradient[max_position] += a_gradient[r][c]

    return a_prev_gradient


def max_pooling_map(a_gradient: np.ndarray | None = None) -> dict:
    """The article's MaxPoolingMap (2x2 overlay, stride 1) as F.maxpool2d(x, 2, stride=1).

    Backward routes each window's ∂C/∂a to the position of its maximum; where overlapping
    windows share a maximum the contributions add up. With an upstream gradient of all ones,
    the backward counts how many windows each input neuron won.
    """
    a_prev = MAX_POOL_INPUT_DATA
    if a_gradient is None:
        a_gradient = np.ones(get_feature_map_shape(a_prev.shape, OVERLAY_SHAPE))

    a_prev_t = Tensor(a_prev, requires_grad=True, dtype=np.float64)
    max_values_t = F.maxpool2d(a_prev_t, size=OVERLAY_SHAPE, stride=1)
    max_values_t.backward(a_gradient)

    loop_max_values, loop_max_positions = max_values_and_positions(a_prev, OVERLAY_SHAPE)
    loop_a_prev_gradient = max_pooling_propagate_backward(
        a_prev, loop_max_values, loop_max_positions, a_gradient)
    return {
        "a_gradient": a_gradient,
        "max_values": max_values_t.data,          # [[10,11,14,17],[16,19,19,17],[16,19,19,18]]
        "a_prev_gradient": a_prev_t.grad.data,
        "loop_max_values": loop_max_values,
        "loop_max_positions": loop_max_positions,
        "loop_a_prev_gradient": loop_a_prev_gradient,
    }


# ---- (g) FullyConnectedLayer ---------------------------------------------------------------

def fully_connected_gradients(seed: int = 0, num_neurons: int = 10) -> dict:
    """The article's FullyConnectedLayer: a_prev flattened to a column, z = w @ a + b,
    a = sigmoid(z); autograd's gradients against the article's dc_db, dc_dw and dc_da_prev.

    As in (e), the article's 4x5 shape with standard-normal activations instead of
    np.arange(20), which would saturate every sigmoid.
    """
    rng = np.random.default_rng(seed)
    a_prev = rng.standard_normal(INPUT_DATA.shape)
    w = rng.standard_normal((num_neurons, a_prev.size))
    b = rng.standard_normal((num_neurons, 1))
    a_gradient = rng.standard_normal((num_neurons, 1))

    a_prev_t = Tensor(a_prev, requires_grad=True, dtype=np.float64)
    w_t = Tensor(w, requires_grad=True, dtype=np.float64)
    b_t = Tensor(b, requires_grad=True, dtype=np.float64)
    a_col = a_prev_t.reshape(a_prev.size, 1)  # the article's as_col
    a_t = F.sigmoid(w_t @ a_col + b_t)
    a_t.backward(a_gradient)
    autograd = {"b": b_t.grad.data, "w": w_t.grad.data, "a_prev": a_prev_t.grad.data}

    # The article's propagate_backward, with its utility functions written out.
    a_col_np = a_prev.reshape(a_prev.size, 1)
    z = np.dot(w, a_col_np) + b                   # raw_activation(w, a, b)
    b_gradient = dc_db(z, a_gradient)
    article = {
        "b": b_gradient,
        "w": np.dot(b_gradient, a_col_np.transpose()),                   # dc_dw
        "a_prev": np.dot(w.transpose(), b_gradient).reshape(a_prev.shape),  # dc_da_prev
    }
    return _comparison({"a_prev": a_prev, "w": w, "b": b, "a_gradient": a_gradient}, a_t.data, autograd, article)


# ---- (h) the article's code listing, run ------------------------------------------------------
# The article's three classes, verbatim except for Python 3 (`range` for `xrange`), and the same
# three classes with autograd: feed_forward is the tensor expression, propagate_backward calls
# backward() and takes the same step. The listing at the end of the article calls
# propagate_backward without feed_forward first, so self.z does not exist yet (AttributeError):
# another slip; run_listing() calls feed_forward first.

class ArticleFeatureMap:
    def __init__(self, a_prev, overlay_shape):
        self.a_prev = a_prev
        self.w = np.random.randn(*overlay_shape)
        self.b = np.random.randn(1, 1)

    def feed_forward(self):
        self.z = signal.correlate2d(self.a_prev, self.w, mode="valid") + self.b
        self.a = sigmoid(self.z)
        return self.a

    def propagate_backward(self, a_gradient, step_size):
        b_gradient_components = dc_db(self.z, a_gradient)
        b_gradient = signal.correlate2d(sigmoid_prime(self.z), a_gradient, mode="valid")
        w_gradient = signal.correlate2d(self.a_prev, b_gradient_components, mode="valid")
        a_prev_gradient = signal.convolve2d(self.w, b_gradient_components, mode="full")
        self.b -= b_gradient * step_size
        self.w -= w_gradient * step_size
        self.a_prev_gradient = a_prev_gradient
        return self.a_prev_gradient


class ArticleMaxPoolingMap:
    def __init__(self, a_prev, overlay_shape):
        self.a_prev = a_prev
        self.overlay_shape = overlay_shape

    def feed_forward(self):
        self.max_values, self.max_positions = max_values_and_positions(self.a_prev, self.overlay_shape)
        return self.max_values

    def propagate_backward(self, a_gradient):
        self.a_prev_gradient = max_pooling_propagate_backward(
            self.a_prev, self.max_values, self.max_positions, a_gradient)
        return self.a_prev_gradient


class ArticleFullyConnectedLayer:
    def __init__(self, a_prev, num_neurons):
        self.a_prev = a_prev
        self.num_neurons = num_neurons
        self.w = np.random.randn(num_neurons, a_prev.size)
        self.b = np.random.randn(num_neurons, 1)

    def feed_forward(self):
        a_prev = self.a_prev.reshape(self.a_prev.size, 1)          # as_col
        self.z = np.dot(self.w, a_prev) + self.b                  # raw_activation
        self.a = sigmoid(self.z)
        return self.a

    def propagate_backward(self, a_gradient, step_size):
        b_gradient = dc_db(self.z, a_gradient)
        a_prev = self.a_prev.reshape(self.a_prev.size, 1)
        weights_gradient = np.dot(b_gradient, a_prev.transpose())  # dc_dw
        a_prev_gradient = np.dot(self.w.transpose(), b_gradient)   # dc_da_prev
        self.a_prev_gradient = a_prev_gradient.reshape(self.a_prev.shape)
        self.b -= b_gradient * step_size
        self.w -= weights_gradient * step_size
        return self.a_prev_gradient


class _Layer:
    """What the three autograd classes share: float64 leaves, and the article's SGD step."""

    parameter_names: tuple[str, ...] = ("w", "b")

    def _leaf(self, value: np.ndarray) -> Tensor:
        return Tensor(np.array(value, dtype=np.float64), requires_grad=True)

    def propagate_backward(self, a_gradient: np.ndarray, step_size: float = 0.0) -> np.ndarray:
        self.a.backward(a_gradient)                     # every gradient, from the expression
        for name in self.parameter_names:               # the article's step: w -= ∂C/∂w · step
            parameter = getattr(self, name)
            setattr(self, name, self._leaf(parameter.data - parameter.grad.data * step_size))
        self.a_prev_gradient = self.a_prev.grad.data
        return self.a_prev_gradient


class FeatureMap(_Layer):
    """The article's FeatureMap: a = σ(a_prev ⋆ w + b), one tensor expression."""

    def __init__(self, a_prev: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
        self.a_prev, self.w, self.b = self._leaf(a_prev), self._leaf(w), self._leaf(b)

    def feed_forward(self) -> np.ndarray:
        self.a_prev.grad = None
        self.a = F.sigmoid(F.correlate2d(self.a_prev, self.w, mode="valid") + self.b)
        return self.a.data


class MaxPoolingMap(_Layer):
    """The article's MaxPoolingMap: the maximum of every overlay position (stride 1)."""

    parameter_names = ()

    def __init__(self, a_prev: np.ndarray, overlay_shape: tuple[int, int]) -> None:
        self.a_prev, self.overlay_shape = self._leaf(a_prev), overlay_shape

    def feed_forward(self) -> np.ndarray:
        self.a_prev.grad = None
        self.a = F.maxpool2d(self.a_prev, size=self.overlay_shape, stride=1)
        return self.a.data


class FullyConnectedLayer(_Layer):
    """The article's FullyConnectedLayer: a = σ(w a_prev + b), a_prev as a column."""

    def __init__(self, a_prev: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
        self.a_prev, self.w, self.b = self._leaf(a_prev), self._leaf(w), self._leaf(b)

    def feed_forward(self) -> np.ndarray:
        self.a_prev.grad = None
        self.a = F.sigmoid(self.w @ self.a_prev.reshape(self.a_prev.numel(), 1) + self.b)
        return self.a.data


def run_listing(seed: int = 0, input_data: np.ndarray | None = None, step_size: float = 0.1) -> dict:
    """The listing at the end of the article, with each article class next to its autograd twin
    (started from the same weights): the activations, the ∂C/∂a_prev each sends back and the
    weights after one step, side by side, as {layer: {quantity: (article, autograd)}}.

    `input_data` defaults to the listing's np.arange(20).reshape(4, 5); pass standard-normal
    values to see gradients that are not all ~1e-9 (the listing's input saturates σ)."""
    np.random.seed(seed)
    input_data = INPUT_DATA if input_data is None else input_data
    results = {}

    by_hand = ArticleFeatureMap(input_data, OVERLAY_SHAPE)
    ours = FeatureMap(input_data, by_hand.w, by_hand.b)
    fl_shape = get_feature_map_shape(input_data.shape, OVERLAY_SHAPE)
    a_gradient = np.random.randn(*fl_shape)
    results["FeatureMap"] = {"a": (by_hand.feed_forward(), ours.feed_forward()),
                             "a_prev_gradient": (by_hand.propagate_backward(a_gradient, step_size),
                                                 ours.propagate_backward(a_gradient, step_size)),
                             "w": (by_hand.w, ours.w.data), "b": (by_hand.b, ours.b.data)}

    by_hand = ArticleMaxPoolingMap(MAX_POOL_INPUT_DATA, OVERLAY_SHAPE)
    ours = MaxPoolingMap(MAX_POOL_INPUT_DATA, OVERLAY_SHAPE)
    a_gradient = np.random.randn(*get_feature_map_shape(MAX_POOL_INPUT_DATA.shape, OVERLAY_SHAPE))
    results["MaxPoolingMap"] = {"a": (by_hand.feed_forward(), ours.feed_forward()),
                                "a_prev_gradient": (by_hand.propagate_backward(a_gradient),
                                                    ours.propagate_backward(a_gradient))}

    by_hand = ArticleFullyConnectedLayer(input_data, 10)
    ours = FullyConnectedLayer(input_data, by_hand.w, by_hand.b)
    a_gradient = np.random.randn(10).reshape(10, 1)  # as_col(np.random.randn(10))
    results["FullyConnectedLayer"] = {"a": (by_hand.feed_forward(), ours.feed_forward()),
                                      "a_prev_gradient": (by_hand.propagate_backward(a_gradient, step_size),
                                                          ours.propagate_backward(a_gradient, step_size)),
                                      "w": (by_hand.w, ours.w.data), "b": (by_hand.b, ours.b.data)}
    return results


def listing_as_printed_fails() -> str:
    """The listing's own order, propagate_backward before any feed_forward: the error it raises."""
    try:
        ArticleFeatureMap(INPUT_DATA, OVERLAY_SHAPE).propagate_backward(np.ones((3, 4)), 0.1)
    except AttributeError as error:
        return f"AttributeError: {error}"
    raise AssertionError("the listing's order ran")


# ---- (i) chaining convolutional layers: 3-D activations and filters ---------------------------

def chained_layer_gradients(seed: int = 0, maps_before: int = 3, maps_after: int = 2) -> dict:
    """A layer of `maps_after` feature maps over `maps_before` maps of the previous layer
    (the article's example: three, then two): each next map has a (3, 2, 2) stack of filters,
    z[j] = a_prev ⋆ w[j] + b[j] with 3-D a_prev and w[j] (the "stack of pancakes" of Appendix B).

    The article's recipe for the backward, per next map j, with its 2-D ∂C/∂b components d_j:
      ∂C/∂w[j]   = a_prev ⋆ [d_j]    (3-D valid cross-correlation; [d_j] is d_j "wrapped in an
                                      extra set of brackets", shape (1, h, w))
      ∂C/∂a_prev = Σ_j w[j] ∗ [d_j]  (3-D full convolution, summed over the next maps)
    Autograd derives both from the forward expression (one (2, 3, 2, 2) kernel); both sides
    are returned with their largest difference.
    """
    rng = np.random.default_rng(seed)
    a_prev = rng.standard_normal((maps_before, 4, 5))
    w = rng.standard_normal((maps_after, maps_before) + OVERLAY_SHAPE)
    b = rng.standard_normal((maps_after, 1, 1))
    a_gradient = rng.standard_normal((maps_after, 3, 4))

    a_prev_t, w_t, b_t = (Tensor(v, requires_grad=True, dtype=np.float64) for v in (a_prev, w, b))
    a_t = F.sigmoid(F.correlate2d(a_prev_t, w_t, mode="valid") + b_t)  # (2, 3, 4)
    a_t.backward(a_gradient)
    autograd = {"b": b_t.grad.data, "w": w_t.grad.data, "a_prev": a_prev_t.grad.data}

    article = {"b": np.zeros_like(b), "w": np.zeros_like(w), "a_prev": np.zeros_like(a_prev)}
    for j in range(maps_after):
        z = signal.correlate(a_prev, w[j], mode="valid")[0] + b[j]      # (3, 4): depth collapses
        components = dc_db(z, a_gradient[j])
        article["b"][j] = signal.correlate2d(sigmoid_prime(z), a_gradient[j], mode="valid")
        article["w"][j] = signal.correlate(a_prev, components[None], mode="valid")
        article["a_prev"] += signal.convolve(w[j], components[None], mode="full")
    return _comparison({"a_prev": a_prev, "w": w, "b": b, "a_gradient": a_gradient}, a_t.data, autograd, article)


# ---- printing ------------------------------------------------------------------------------

def heading(title: str) -> None:
    print(f"\n== {title} ==")


def show(label: str, value) -> None:
    text = np.array2string(np.asarray(value)) if isinstance(value, np.ndarray) else str(value)
    if "\n" in text:
        print(f"{label}:\n{text}")
    else:
        print(f"{label}: {text}")


def main() -> None:
    np.set_printoptions(precision=4, suppress=True)

    heading("(a) Parameter counts")
    counts = parameter_counts()
    print(f"fully connected, 28x28 inputs -> 30 neurons: 28*28*30 = {counts['fc_weights']:,} weights"
          f" + 30 biases = {counts['fc_parameters']:,} parameters")
    print(f"28x28 input, 4x4 overlay -> feature map of shape {counts['feature_map_shape']}")
    print(f"16 feature maps x (4*4 weights + 1 bias) = {counts['conv_parameters']} parameters")

    heading("(b) The size of a feature map")
    size = feature_map_size()
    print(f"4x5 input (np.arange(20).reshape(4,5)), 2x2 overlay -> {size['shape']}")
    print(f"M x N input, I x J overlay -> (M-I+1) x (N-J+1) = {size['formula']}")
    print(f"the article's '(M-I+1)x(J-N+1)' is a slip: it would give {size['article_formula']}")
    print(f"7x3 input, 2x3 overlay -> {size['narrow_shape']}")

    heading("(c) Appendix A: valid vs full mode")
    a = appendix_a()
    for name, value in a.items():
        show(name, value)
    print("convolve2d(values, f) == correlate2d(values, rot180(f)): "
          f"valid {np.array_equal(a['convolve_valid'], a['correlate_rot180_valid'])}, "
          f"full {np.array_equal(a['convolve_full'], a['correlate_rot180_full'])}")

    heading("(d) Appendix B: summing 2-D correlations vs one 3-D correlation")
    b = appendix_b()
    for name in ("result1", "result2", "sum_of_results", "stacked_results"):
        show(name, b[name])
    show("scipy.signal.correlate(stacked, filters).reshape(2,2)", b["scipy_stacked"])
    print("(the article's `signal.sp.correlate` is a slip for `scipy.signal.correlate`)")

    heading("(e) FeatureMap: autograd vs the article's formulas (float64)")
    fm = feature_map_gradients()
    for name in ("b", "w", "a_prev"):
        show(f"{name}_gradient (autograd)", fm["autograd"][name])
        print(f"  max |autograd - article| = {fm['max_abs_diff'][name]:.3g}")

    heading("(f) MaxPoolingMap: 2x2 overlay, stride 1")
    mp = max_pooling_map()
    show("max_pool_input_data", MAX_POOL_INPUT_DATA)
    show("max values (forward)", to_int(mp["max_values"]))
    show("a_prev_gradient for an upstream gradient of ones (backward)", to_int(mp["a_prev_gradient"]))
    print("the article's loop code (xrange is Python 2; range here) agrees: "
          f"forward {np.array_equal(mp['max_values'], mp['loop_max_values'])}, "
          f"backward {np.array_equal(mp['a_prev_gradient'], mp['loop_a_prev_gradient'])}")

    heading("(g) FullyConnectedLayer: autograd vs the article's formulas (float64)")
    fc = fully_connected_gradients()
    for name in ("b", "w", "a_prev"):
        print(f"{name}_gradient {fc['autograd'][name].shape}: "
              f"max |autograd - article| = {fc['max_abs_diff'][name]:.3g}")

    heading("(h) The article's code listing, run: its classes vs their autograd twins")
    print("as printed, the listing calls propagate_backward before feed_forward (a slip):")
    print(f"  {listing_as_printed_fails()}")
    print("with feed_forward first, on the listing's inputs (np.random.seed(0)):")
    for layer, quantities in run_listing().items():
        for name, (by_hand, ours) in quantities.items():
            print(f"  {layer}.{name} {np.shape(ours)}: max |autograd - article| = "
                  f"{np.max(np.abs(ours - by_hand)):.3g} (largest value {np.max(np.abs(by_hand)):.3g})")
    print("(the listing's input np.arange(20) saturates σ: σ'(z) is ~1e-9, hence the tiny gradients)")

    heading("(i) Chaining: 3 feature maps -> 2, with 3-D activations and filters (float64)")
    chain = chained_layer_gradients()
    for name in ("b", "w", "a_prev"):
        print(f"{name}_gradient {chain['autograd'][name].shape}: "
              f"max |autograd - article's recipe| = {chain['max_abs_diff'][name]:.3g}")


if __name__ == "__main__":
    main()
