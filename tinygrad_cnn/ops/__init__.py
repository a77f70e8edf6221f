"""The differentiable primitives: one `Function` each, forward and backward side by side.
Their forwards compute through ``tinygrad_cnn.backend`` alone, which decides how (memory
layouts, threads); an op holds only its formulas.

Everything else (mean, softmax, cross_entropy, mse_loss, convolve2d, the kernel
ranks and modes of correlate2d, flatten, swapaxes, ...) is composed from these in
``tinygrad_cnn.functional`` and ``tinygrad_cnn.tensor``.

| primitive       | forward                        | backward (∂C/∂input)                               |
|-----------------|--------------------------------|----------------------------------------------------|
| Add             | a + b                          | dy, dy (summed to each shape)                      |
| Sub             | a − b                          | dy, −dy                                            |
| Mul             | a · b                          | dy·b, dy·a                                         |
| Div             | a / b                          | dy/b, −dy·a/b²                                     |
| Pow             | a ** b                         | dy·b·a^(b−1), dy·y·ln a                            |
| Neg             | −a                             | −dy                                                |
| Exp             | e^a                            | dy·y                                               |
| Log             | ln a                           | dy/a                                               |
| Sigmoid         | σ(z)                           | dy·σ(z)(1−σ(z)) (SigmoidBackward)                  |
| SigmoidBackward | dy·a(1−a), a = σ(z)            | dg·a(1−a) (itself), dg·dy·(1−2a)                   |
| Silu            | z·σ(z)                         | dy·σ(1 + z(1−σ)) (SiluBackward)                    |
| SiluBackward    | dy·σ(1 + z(1−σ)), σ = σ(z)     | dg·σ(1 + z(1−σ)) (itself), dg·dy·σ(1−σ)(2 + z(1−2σ)) |
| Tanh            | tanh z                         | dy·(1−y²)                                          |
| Erf             | erf z (for the exact GELU)     | dy·(2/√π)·e^(−z²)                                  |
| Relu            | max(z, 0)                      | dy·[z>0] (ReluBackward)                            |
| ReluBackward    | dy·[z>0]                       | dg·[z>0] (itself), 0                               |
| Cast            | a as float32/float64           | dy cast back                                       |
| Where           | a where cond, else b           | dy where cond, dy elsewhere (Where)                |
| Sum             | Σ_axes a                       | dy broadcast back                                  |
| Max             | max_axes a                     | dy at the first argmax                             |
| LogSoftmax      | z − m − ln Σ e^(z − m)         | dy − e^y·Σ dy                                      |
| BroadcastTo     | a broadcast                    | dy summed back                                     |
| Reshape         | a reshaped                     | dy reshaped back                                   |
| Transpose       | a permuted                     | dy inversely permuted                              |
| Cat             | inputs joined along an axis    | each input's slice of dy (GetItem)                 |
| GetItem         | a[index]                       | dy scatter-added at index (IndexAdd)               |
| IndexAdd        | zeros + v at index             | dy[index] (GetItem)                                |
| MatMul          | a @ b                          | dy @ bᵀ, aᵀ @ dy                                   |
| Linear          | x @ wᵀ (+ b)                   | dy @ w, dyᵀ @ x, Σ dy (x, dy as rows)              |
| Correlate2d     | x ⋆ k (+ b), padded, strided, dilated | ∂C/∂x = dy ∗ k (Correlate2dGradX), ∂C/∂k = x ⋆ dy (Correlate2dGradK), ∂C/∂b = Σ dy |
| Correlate2dGradK | dk = x ⋆ dy (valid, over the batch) | ∂C/∂x = dy ∗ g (Correlate2dGradX), ∂C/∂dy = x ⋆ g (Correlate2d) |
| Correlate2dGradX | dx = dy ∗ k (full convolution, strided, dilated) | ∂C/∂dy = g ⋆ k (Correlate2d), ∂C/∂k = g ⋆ dy (Correlate2dGradK) |
| MaxPool2d       | window max (−∞ padding)        | dy routed to each window's argmax (MaxPool2dBackward) |
| MaxPool2dBackward | dy routed to the saved argmax | g gathered at the argmax (MaxPool2dWithIndices)    |
| MaxPool2dWithIndices | g gathered at the saved argmax | dy routed to the argmax (MaxPool2dBackward)   |
| BatchNorm       | x̂·w + b, x̂ = (x − μ)·s, s = 1/√(σ² + ε) (batch statistics) | ∂C/∂x = w·s·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩) (BatchNormBackward), ∂C/∂w = Σ dy·x̂ (BatchNormWeightGrad), ∂C/∂b = Σ dy |
| BatchNormBackward | w·s·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩)  | itself for dy; for x and w compositions (see ops/norm.py) |
| BatchNormWeightGrad | Σ dy·x̂ (per channel)       | x̂·g (BatchNorm) for dy, s·g·(dy − ⟨dy⟩ − x̂·⟨dy·x̂⟩) (BatchNormBackward) for x |
"""
from tinygrad_cnn.ops.conv import Correlate2d, Correlate2dGradK, Correlate2dGradX
from tinygrad_cnn.ops.elementwise import (Add, Cast, Div, Erf, Exp, Log, Mul, Neg, Pow, Relu, ReluBackward, Sigmoid,
                                          SigmoidBackward, Silu, SiluBackward, Sub, Tanh, Where)
from tinygrad_cnn.ops.linalg import Linear, MatMul
from tinygrad_cnn.ops.movement import Cat, GetItem, IndexAdd, Reshape, Transpose
from tinygrad_cnn.ops.norm import BatchNorm, BatchNormBackward, BatchNormWeightGrad
from tinygrad_cnn.ops.pool import MaxPool2d, MaxPool2dBackward, MaxPool2dWithIndices
from tinygrad_cnn.ops.reduce import BroadcastTo, LogSoftmax, Max, Sum, sum_to

PRIMITIVES = (Add, Sub, Mul, Div, Pow, Neg, Exp, Log, Sigmoid, SigmoidBackward, Silu, SiluBackward, Tanh, Erf, Relu,
              ReluBackward, Cast, Where,
              Sum, Max, LogSoftmax, BroadcastTo, Reshape, Transpose, Cat, GetItem, IndexAdd, MatMul, Linear,
              Correlate2d, Correlate2dGradK, Correlate2dGradX, MaxPool2d, MaxPool2dBackward, MaxPool2dWithIndices,
              BatchNorm, BatchNormBackward, BatchNormWeightGrad)

__all__ = [cls.__name__ for cls in PRIMITIVES] + ["PRIMITIVES", "sum_to"]
