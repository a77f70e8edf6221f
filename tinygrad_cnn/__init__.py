"""tinygrad_cnn: a small autograd framework for convolutional networks (numpy + scipy)."""
from tinygrad_cnn.tensor import Tensor  # first: the ops, the graph and the layers are written against it
from tinygrad_cnn.anomaly import detect_anomaly, is_anomaly_enabled
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.backend import get_num_threads, set_num_threads
from tinygrad_cnn.dtypes import bool_ as bool, float32, float64, int32, int64, uint8  # noqa: A001 -- torch.bool
from tinygrad_cnn.dtypes import float32 as float, float64 as double, int32 as int, int64 as long  # noqa: A001 -- torch's aliases
from tinygrad_cnn.function import Context, Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tinygrad_cnn.tensor_ops import (abs, all, amax, amin, any, argmax, argmin, cat, chunk, clamp, clone, cumsum, erf,  # noqa: A004
                                     expand, flatten, from_numpy, logsumexp, max, maximum, mean, min, minimum, norm,
                                     permute, prod, split,
                                     sqrt, squeeze, stack, std, sum, tensor, transpose, unsqueeze, var, where)
from tinygrad_cnn.creation import (arange, default_generator, empty, empty_like, eye, full, full_like, linspace,
                                   manual_seed, ones, ones_like, rand, randint, randn, zeros, zeros_like)
from tinygrad_cnn.aliases import allclose, equal, exp, isfinite, isinf, isnan, log, mm, numel, pow, square  # noqa: A004
from tinygrad_cnn.functional import matmul, relu, sigmoid, tanh
from tinygrad_cnn.devices import cuda, device
from tinygrad_cnn.select_ops import (argsort, flip, gather, masked_fill, randperm, roll, sort, take_along_dim, topk,
                                     unique)
from tinygrad_cnn.function import inference_mode
from tinygrad_cnn.io import load, save
from tinygrad_cnn import backend, data, dtypes, functional, io, models, nn, optim, transforms, utils

__version__ = "0.1.0"

__all__ = ["Tensor", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "detect_anomaly",
           "is_anomaly_enabled", "set_num_threads", "get_num_threads", "Function", "Context", "functional", "nn",
           "optim", "io", "data", "models", "backend", "dtypes", "utils", "transforms", "tensor", "from_numpy", "float32", "float64", "int64",
           "int32", "uint8", "bool", "float", "double", "int", "long", "abs", "amax", "amin", "argmax", "argmin", "clamp", "erf", "expand", "flatten", "max",
           "maximum", "mean", "min", "minimum", "permute", "sqrt", "squeeze", "sum", "transpose", "unsqueeze", "where",
           "var", "std", "all", "any", "clone", "linspace", "eye", "logsumexp", "prod", "cumsum", "norm",
           "cat", "stack", "split", "chunk", "arange", "default_generator", "empty", "empty_like", "full",
           "full_like", "manual_seed", "ones", "ones_like", "rand", "randint", "randn", "zeros", "zeros_like",
           "device", "cuda", "inference_mode", "save", "load", "exp", "log", "sigmoid", "relu", "tanh", "pow",
           "square", "matmul", "mm", "numel", "isnan", "isinf", "isfinite", "allclose", "equal", "sort", "argsort", "topk",
           "gather", "take_along_dim", "masked_fill", "flip", "roll", "randperm", "unique"]
