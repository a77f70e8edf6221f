"""The networks the examples, tests and benchmarks share."""
from __future__ import annotations


from tinygrad_cnn import creation, nn

__all__ = ["nielsen_cnn"]


def nielsen_cnn(activation: str = "relu", dropout: float = 0.0, seed: int = 0) -> nn.Sequential:
    """Nielsen's chapter-6 network, which the article builds on, for 28×28 images:

        conv 5×5 ×20 → act → max-pool 2 → conv 5×5 ×40 → act → max-pool 2 → FC 640→100 → act
        (→ dropout) → FC 100→10

    `activation` is "relu" (layers start He-normal) or "sigmoid" (Glorot-uniform, the article's
    choice); the output layer starts Glorot-uniform. `seed` fixes every initial weight.
    """
    if activation not in ("relu", "sigmoid"):
        raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
    act = nn.ReLU if activation == "relu" else nn.Sigmoid
    init = "he" if activation == "relu" else "glorot"
    rng = creation.generator(seed, "seed")  # None: the global generator (tinygrad_cnn.manual_seed)
    layers: list[nn.Module] = [
        nn.Conv2d(1, 20, 5, init=init, rng=rng), act(), nn.MaxPool2d(2),   # 28×28 → 24×24 → 12×12
        nn.Conv2d(20, 40, 5, init=init, rng=rng), act(), nn.MaxPool2d(2),  # → 8×8 → 4×4
        nn.Flatten(),
        nn.Linear(40 * 4 * 4, 100, init=init, rng=rng), act(),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout, rng=rng))
    layers.append(nn.Linear(100, 10, init="glorot", rng=rng))
    return nn.Sequential(*layers)
