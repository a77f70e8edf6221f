"""``tinygrad_cnn.utils.data``: torch.utils.data's datasets (Dataset, TensorDataset, Subset, ConcatDataset,
random_split), samplers and DataLoader."""
from tinygrad_cnn.utils import data

__all__ = ["data"]
