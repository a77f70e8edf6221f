"""A short, typical PyTorch CNN script, run once with ``lib = torch`` and once with
``lib = tinygrad_cnn``, unchanged but for that name: its losses, its final weights and its test
accuracy must agree (float32, the same initial weights and batches)."""
import numpy as np
import pytest

import tinygrad_cnn

torch = pytest.importorskip("torch")


def network(lib):
    """The script's network, as a PyTorch user writes it (BatchNorm, cat, max pooling)."""
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(8, 6, 3)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(6 * 3 * 3, 5)

        def forward(self, x):
            a = F.relu(self.bn1(self.conv1(x)))
            a = lib.cat([a, F.leaky_relu(a, 0.1) * 0.5], dim=1)
            a = self.pool(F.relu(self.conv2(a)))
            return self.fc(a.flatten(1))

    return Net()


def script(lib, model):
    """The training script (a scheduler, label smoothing, gradient clipping, argmax)."""
    nn = lib.nn
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(5):
        x = lib.tensor(rng.random((8, 1, 8, 8), dtype=np.float32))
        y = lib.tensor(rng.integers(0, 5, 8))
        loss = criterion(model(x), y)
        opt.zero_grad()
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        scheduler.step()
        losses.append(loss.item())
    model.eval()
    x_test = lib.tensor(rng.random((16, 1, 8, 8), dtype=np.float32))
    y_test = lib.tensor(rng.integers(0, 5, 16))
    predicted = model(x_test).argmax(dim=1)
    accuracy = (predicted == y_test).float().mean().item()
    return losses, model.state_dict(), predicted.numpy(), accuracy, scheduler.get_last_lr()


def test_a_pytorch_script_runs_unchanged_and_agrees():
    torch.manual_seed(0)
    theirs_model = network(torch)
    ours_model = network(tinygrad_cnn)
    ours_model.load_state_dict({k: v.numpy().copy() for k, v in theirs_model.state_dict().items()})
    theirs, ours = script(torch, theirs_model), script(tinygrad_cnn, ours_model)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=2e-5)
    assert list(ours[1]) == list(theirs[1])
    for key, value in theirs[1].items():
        np.testing.assert_allclose(ours[1][key], value.numpy(), rtol=2e-4, atol=2e-5, err_msg=key)
    np.testing.assert_array_equal(ours[2], theirs[2])
    assert ours[3] == theirs[3] and ours[4] == pytest.approx(theirs[4])
