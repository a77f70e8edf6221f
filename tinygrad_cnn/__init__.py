"""tinygrad_cnn: a small autograd framework for convolutional networks (numpy + scipy)."""
from tinygrad_cnn.tensor import Tensor  # first: the ops, the graph and the layers are written against it
from tinygrad_cnn.anomaly import detect_anomaly, is_anomaly_enabled
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.backend import get_num_threads, set_num_threads
from tinygrad_cnn.function import Context, Function, is_grad_enabled, no_grad, set_grad_enabled
from tinygrad_cnn import backend, data, functional, io, models, nn, optim

__version__ = "0.1.0"

__all__ = ["Tensor", "grad", "no_grad", "set_grad_enabled", "is_grad_enabled", "detect_anomaly",
           "is_anomaly_enabled", "set_num_threads", "get_num_threads", "Function", "Context", "functional", "nn",
           "optim", "io", "data", "models", "backend"]
