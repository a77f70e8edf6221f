"""The article's numbers, reproduced by examples/article_walkthrough.py.

Expected values are copied from the article (its Appendix A and B REPL output); the gradient
formulas are recomputed here with scipy from the inputs the example used, so neither side of a
comparison is taken on trust from the example alone.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "examples" / "article_walkthrough.py"


@pytest.fixture(scope="module")
def walkthrough():
    spec = importlib.util.spec_from_file_location("article_walkthrough", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_exactly(actual, expected):
    """Same shape, same values, and whole numbers held in an integer array (as printed)."""
    actual = np.asarray(actual)
    assert actual.dtype.kind in "iu", f"expected an integer array, got dtype {actual.dtype}"
    assert actual.shape == np.shape(expected), f"shape {actual.shape} != {np.shape(expected)}"
    assert np.array_equal(actual, expected), f"\n{actual}\n!=\n{np.asarray(expected)}"


# ---- (a), (b): counts and shapes --------------------------------------------------------------

def test_parameter_counts(walkthrough):
    counts = walkthrough.parameter_counts()
    assert counts["fc_weights"] == 23_520
    assert counts["fc_parameters"] == 23_550
    assert counts["conv_parameters"] == 272
    assert counts["feature_map_shape"] == (25, 25)


def test_feature_map_size(walkthrough):
    size = walkthrough.feature_map_size()
    assert size["shape"] == (3, 4)
    assert size["formula"] == (3, 4)
    assert size["article_formula"] == (3, -2)  # the slip (M-I+1)x(J-N+1)
    assert size["narrow_shape"] == (6, 1)


# ---- (c) Appendix A ---------------------------------------------------------------------------

APPENDIX_A = {
    "correlate_valid": [[370, 470], [670, 770]],
    "convolve_valid": [[230, 330], [530, 630]],
    "f_rot180": [[40, 30], [20, 10]],
    "correlate_rot180_valid": [[230, 330], [530, 630]],
    "correlate_full": [[40, 110, 180, 90], [180, 370, 470, 210], [360, 670, 770, 330],
                       [140, 230, 260, 90]],
    "convolve_full": [[10, 40, 70, 60], [70, 230, 330, 240], [190, 530, 630, 420],
                      [210, 520, 590, 360]],
    "correlate_rot180_full": [[10, 40, 70, 60], [70, 230, 330, 240], [190, 530, 630, 420],
                              [210, 520, 590, 360]],
}


def test_appendix_a(walkthrough):
    results = walkthrough.appendix_a()
    assert set(results) == set(APPENDIX_A)
    for name, expected in APPENDIX_A.items():
        assert_exactly(results[name], expected)


# ---- (d) Appendix B ---------------------------------------------------------------------------

def test_appendix_b(walkthrough):
    results = walkthrough.appendix_b()
    assert_exactly(results["result1"], [[37, 47], [67, 77]])
    assert_exactly(results["result2"], [[175, 149], [97, 71]])
    assert_exactly(results["sum_of_results"], [[212, 196], [164, 148]])
    assert_exactly(results["stacked_results"], [[212, 196], [164, 148]])  # one 3-D kernel
    assert_exactly(results["scipy_stacked"], [[212, 196], [164, 148]])


def test_to_int_refuses_to_round(walkthrough):
    """The exact comparisons above rely on to_int never rounding a near-integer."""
    assert_exactly(walkthrough.to_int(np.array([[370.0, -2.0]])), [[370, -2]])
    with pytest.raises(ValueError):
        walkthrough.to_int(np.array([369.9999]))


# ---- (e), (g): gradients against the article's formulas --------------------------------------

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


def assert_gradients(result, article, shapes):
    for name, expected in article.items():
        actual = result["autograd"][name]
        assert actual.dtype == np.float64
        assert actual.shape == shapes[name]
        # Not vacuous: a saturated sigmoid would make every gradient ~0 and any check pass.
        assert np.max(np.abs(expected)) > 1e-2, f"{name} gradient is nearly zero"
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(result["article"][name], expected, rtol=0, atol=1e-12)
        assert result["max_abs_diff"][name] <= 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feature_map_gradients(walkthrough, seed):
    result = walkthrough.feature_map_gradients(seed=seed)
    a_prev, w, b, a_gradient = (result["inputs"][k] for k in ("a_prev", "w", "b", "a_gradient"))
    assert a_prev.shape == (4, 5) and w.shape == (2, 2) and b.shape == (1, 1)

    z = signal.correlate2d(a_prev, w, mode="valid") + b
    np.testing.assert_allclose(result["a"], sigmoid(z), rtol=0, atol=1e-12)
    dc_db = sigmoid_prime(z) * a_gradient
    article = {
        "b": signal.correlate2d(sigmoid_prime(z), a_gradient, mode="valid"),
        "w": signal.correlate2d(a_prev, dc_db, mode="valid"),
        "a_prev": signal.convolve2d(w, dc_db, mode="full"),
    }
    assert_gradients(result, article, {"b": (1, 1), "w": (2, 2), "a_prev": (4, 5)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fully_connected_gradients(walkthrough, seed):
    result = walkthrough.fully_connected_gradients(seed=seed)
    a_prev, w, b, a_gradient = (result["inputs"][k] for k in ("a_prev", "w", "b", "a_gradient"))
    a_col = a_prev.reshape(a_prev.size, 1)

    z = np.dot(w, a_col) + b
    np.testing.assert_allclose(result["a"], sigmoid(z), rtol=0, atol=1e-12)
    dc_db = sigmoid_prime(z) * a_gradient
    article = {
        "b": dc_db,
        "w": np.dot(dc_db, a_col.T),
        "a_prev": np.dot(w.T, dc_db).reshape(a_prev.shape),
    }
    assert_gradients(result, article, {"b": (10, 1), "w": (10, 20), "a_prev": (4, 5)})


# ---- (f) MaxPoolingMap -------------------------------------------------------------------------

MAX_VALUES = [[10, 11, 14, 17], [16, 19, 19, 17], [16, 19, 19, 18]]
# How many of the 12 windows each input neuron wins (19 at (2, 2) wins four).
ROUTING_OF_ONES = [[0, 0, 1, 0, 0], [1, 0, 0, 1, 2], [0, 2, 4, 0, 0], [0, 0, 0, 1, 0]]


def test_max_pooling_forward(walkthrough):
    result = walkthrough.max_pooling_map()
    assert_exactly(walkthrough.to_int(result["max_values"]), MAX_VALUES)
    assert_exactly(walkthrough.to_int(result["loop_max_values"]), MAX_VALUES)


def test_max_pooling_backward_of_ones(walkthrough):
    result = walkthrough.max_pooling_map()
    assert np.array_equal(result["a_gradient"], np.ones((3, 4)))
    assert np.array_equal(result["a_prev_gradient"], result["loop_a_prev_gradient"])
    assert_exactly(walkthrough.to_int(result["a_prev_gradient"]), ROUTING_OF_ONES)
    assert_exactly(walkthrough.to_int(result["loop_a_prev_gradient"]), ROUTING_OF_ONES)


def test_max_pooling_backward_of_random_gradient(walkthrough):
    """Distinct upstream values show that each window's own value reaches its maximum."""
    a_gradient = np.random.default_rng(0).standard_normal((3, 4))
    result = walkthrough.max_pooling_map(a_gradient)
    np.testing.assert_allclose(result["a_prev_gradient"], result["loop_a_prev_gradient"],
                               rtol=0, atol=1e-12)
    assert result["a_prev_gradient"][2, 2] == pytest.approx(
        a_gradient[1, 1] + a_gradient[1, 2] + a_gradient[2, 1] + a_gradient[2, 2], abs=1e-12)


def test_max_pooling_loop_positions(walkthrough):
    """The Python 3 re-implementation of the article's loop finds the right argmax positions."""
    positions = walkthrough.max_pooling_map()["loop_max_positions"]
    assert tuple(int(i) for i in positions[0][0]) == (1, 0)   # 10
    assert tuple(int(i) for i in positions[2][3]) == (3, 3)   # 18
    assert all(tuple(int(i) for i in positions[r][c]) == (2, 2)
               for r, c in [(1, 1), (1, 2), (2, 1), (2, 2)])  # the four windows 19 wins


# ---- (h) the code listing: the article's classes next to their autograd twins --------------

def test_listing_as_printed_is_a_slip(walkthrough):
    assert walkthrough.listing_as_printed_fails() == \
        "AttributeError: 'ArticleFeatureMap' object has no attribute 'z'"


@pytest.mark.parametrize("normal_input", [False, True])
def test_listing_classes_agree_with_autograd(walkthrough, normal_input):
    """The listing's own inputs (σ saturated, gradients ~1e-9) and standard-normal inputs
    (gradients of order 1, so the weight step shows): same activations, same ∂C/∂a_prev, same
    weights after one step of 0.1."""
    input_data = np.random.default_rng(5).standard_normal((4, 5)) if normal_input else None
    results = walkthrough.run_listing(seed=0, input_data=input_data)
    assert set(results) == {"FeatureMap", "MaxPoolingMap", "FullyConnectedLayer"}
    for layer, quantities in results.items():
        for name, (by_hand, ours) in quantities.items():
            assert np.shape(ours) == np.shape(by_hand), (layer, name)
            scale = np.max(np.abs(by_hand))
            assert scale > 0, (layer, name)
            np.testing.assert_allclose(ours, by_hand, rtol=1e-9, atol=1e-12 * scale, err_msg=f"{layer}.{name}")
    np.random.seed(0)
    w0 = np.random.randn(2, 2)  # the FeatureMap's initial weights: the step moved them
    moved = np.max(np.abs(results["FeatureMap"]["w"][1] - w0))
    assert (moved > 1e-3) if normal_input else (0 <= moved < 1e-6)
    # Max pooling of the article's input: the max values of section (f).
    assert np.array_equal(results["MaxPoolingMap"]["a"][1], MAX_VALUES)


# ---- (i) chaining convolutional layers ------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_chained_layer_gradients_follow_the_articles_recipe(walkthrough, seed):
    result = walkthrough.chained_layer_gradients(seed=seed)
    a_prev, w, b, a_gradient = (result["inputs"][k] for k in ("a_prev", "w", "b", "a_gradient"))
    assert a_prev.shape == (3, 4, 5) and w.shape == (2, 3, 2, 2) and a_gradient.shape == (2, 3, 4)

    # Each next map j: z[j] = Σ_c a_prev[c] ⋆ w[j, c] + b[j] (2-D correlations summed, Appendix B).
    z = np.stack([sum(signal.correlate2d(a_prev[c], w[j, c], mode="valid") for c in range(3)) + b[j]
                  for j in range(2)])
    np.testing.assert_allclose(result["a"], sigmoid(z), rtol=0, atol=1e-12)
    dc_db = sigmoid_prime(z) * a_gradient
    article = {
        "b": (sigmoid_prime(z) * a_gradient).sum(axis=(1, 2)).reshape(2, 1, 1),
        # per previous map c: a_prev[c] ⋆ dc_db[j], the 2-D slices of the 3-D recipe
        "w": np.array([[signal.correlate2d(a_prev[c], dc_db[j], mode="valid") for c in range(3)]
                       for j in range(2)]),
        "a_prev": sum(np.array([signal.convolve2d(w[j, c], dc_db[j], mode="full") for c in range(3)])
                      for j in range(2)),
    }
    assert_gradients(result, article, {"b": (2, 1, 1), "w": (2, 3, 2, 2), "a_prev": (3, 4, 5)})


# ---- the script itself -------------------------------------------------------------------------

def test_script_runs_and_prints_appendix_b():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, str(SCRIPT.relative_to(REPO))], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "sum_of_results:\n[[212 196]\n [164 148]]" in out
    assert "stacked_results:\n[[212 196]\n [164 148]]" in out
    assert "23,550 parameters" in out and "= 272 parameters" in out
    for section in "abcdefghi":
        assert f"== ({section}) " in out
    assert "no attribute 'z'" in out  # the listing's slip, shown
