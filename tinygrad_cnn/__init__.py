"""tinygrad_cnn: a small autograd framework for convolutional networks (numpy + scipy)."""
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.function import (Context, Function, detect_anomaly, is_anomaly_enabled, is_grad_enabled,
                                   no_grad, set_grad_enabled)
from tinygrad_cnn.threads import get_num_threads, set_num_threads
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn import data, functional, io, models, nn, optim

__version__ = "0.1.0"

__all__ = ["Tensor", "grad", "no_grad", "set_grad_enabled", "is_grad_enabled", "detect_anomaly",
           "is_anomaly_enabled", "set_num_threads", "get_num_threads", "Function", "Context", "functional", "nn",
           "optim", "io", "data", "models"]
