"""``tinygrad_cnn.utils.data``: PyTorch's Dataset, TensorDataset and DataLoader."""
from tinygrad_cnn.utils import data

__all__ = ["data"]
