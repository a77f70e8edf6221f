"""The fast backend: the reference's functions, with the ones that carry a network's time
replaced by kernels that choose memory layouts, share their work among threads and keep BLAS
single-threaded inside each part (see parallel.py). Results agree with the reference to rounding.
"""
from __future__ import annotations

import numpy as np

from tinygrad_cnn.backend.conv import conv2d, conv2d_grad_k, conv2d_grad_x
from tinygrad_cnn.backend.elementwise import (elementwise, relu_backward, sigmoid, sigmoid_backward, silu,
                                              silu_backward, where)
from tinygrad_cnn.backend.linalg import linear, matmul
from tinygrad_cnn.backend.norm import batch_norm, batch_norm_backward, batch_norm_weight_grad
from tinygrad_cnn.backend.pool import index_add, maxpool2d, maxpool2d_backward, maxpool2d_gather
from tinygrad_cnn.backend.reference import (astype, broadcast_to, concatenate, divide, erf, exp, first_argmax_mask, getitem, log,
                                            log_softmax, negative, power, reduce_max, reduce_sum, reshape, tanh,
                                            transpose)

ndarray = np.ndarray


def add(a: ndarray, b: ndarray) -> ndarray:
    return elementwise(np.add, a, b)


def subtract(a: ndarray, b: ndarray) -> ndarray:
    return elementwise(np.subtract, a, b)


def multiply(a: ndarray, b: ndarray) -> ndarray:
    return elementwise(np.multiply, a, b)


def relu(z: ndarray) -> ndarray:
    return elementwise(np.maximum, z, 0)


__all__ = ["add", "subtract", "multiply", "divide", "power", "negative", "exp", "log", "tanh", "erf", "astype", "where",
           "relu", "relu_backward", "sigmoid", "sigmoid_backward", "silu", "silu_backward", "reduce_sum", "reduce_max", "first_argmax_mask",
           "log_softmax", "broadcast_to", "reshape", "transpose", "concatenate", "getitem", "index_add", "matmul", "linear",
           "conv2d", "conv2d_grad_k", "conv2d_grad_x", "maxpool2d", "maxpool2d_backward", "maxpool2d_gather", "batch_norm", "batch_norm_backward",
           "batch_norm_weight_grad"]
