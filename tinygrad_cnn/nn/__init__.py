"""Layers, as ``torch.nn``: `Module` and the building blocks of a convolutional network
(modules.py, layers.py); ``tinygrad_cnn.nn.functional`` is ``torch.nn.functional``.

A `Module` (module.py) finds its parameters by itself: every attribute that is a Tensor (a
parameter when it is an `nn.Parameter`, frozen or not, or requires grad; a buffer otherwise) or
a Module (recursively) belongs to it, in the order the attributes were set.
"""
from tinygrad_cnn.nn import functional, init, utils
from tinygrad_cnn.nn.layers import (ELU, ConvTranspose2d, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss,
                                    BCEWithLogitsLoss, CrossEntropyLoss, Dropout, Dropout2d, GELU, GroupNorm, Hardsigmoid, Hardswish, Hardtanh,
                                    Identity, L1Loss, LayerNorm, LeakyReLU, MaxPool2d, MSELoss, NLLLoss, ReLU6, SiLU, Softmax,
                                    Softplus, Upsample)
from tinygrad_cnn.nn.containers import ModuleList, Sequential
from tinygrad_cnn.nn.modules import Conv2d, Flatten, Linear, Module, Parameter, ReLU, Sigmoid, StateDictError, Tanh

__all__ = ["Module", "Parameter", "Conv2d", "ConvTranspose2d", "MaxPool2d", "Linear", "Sigmoid", "ReLU", "Tanh", "Flatten", "Dropout",
           "Sequential", "ModuleList", "StateDictError", "Identity", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus",
           "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish", "Upsample", "GroupNorm",
           "Softmax", "AvgPool2d", "AdaptiveAvgPool2d", "Dropout2d", "BatchNorm1d", "BatchNorm2d", "CrossEntropyLoss",
           "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "LayerNorm", "functional",
           "init", "utils"]
