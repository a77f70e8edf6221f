"""tinygrad_cnn.transforms: whole-batch image transforms against per-image numpy oracles."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import transforms as T

rng = np.random.default_rng(6)
BATCH = rng.random((5, 2, 7, 9)).astype(np.float32)


def test_to_tensor_and_normalize():
    images = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    x = T.ToTensor()(images)
    assert x.shape == (3, 1, 4, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], images / np.float32(255))
    y = T.Normalize([0.5, 0.25], [2.0, 0.5])(BATCH)
    np.testing.assert_allclose(y[:, 0], (BATCH[:, 0] - 0.5) / 2, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], (BATCH[:, 1] - 0.25) / 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="std > 0"):
        T.Normalize(0.0, 0.0)


def test_random_crop_is_a_window_of_the_padded_image_and_repeats_with_a_generator():
    crop = T.RandomCrop((5, 6), padding=2, generator=np.random.default_rng(3))
    out = crop(BATCH)
    again = T.RandomCrop((5, 6), padding=2, generator=np.random.default_rng(3))(BATCH)
    np.testing.assert_array_equal(out, again)
    padded = np.pad(BATCH, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = np.random.default_rng(3)
    top, left = offsets.integers(0, 11 - 5 + 1, 5), offsets.integers(0, 13 - 6 + 1, 5)
    for i in range(5):  # the oracle, one image at a time
        np.testing.assert_array_equal(out[i], padded[i, :, top[i]:top[i] + 5, left[i]:left[i] + 6])
    with pytest.raises(ValueError, match="does not fit"):
        T.RandomCrop(20)(BATCH)


def test_horizontal_flip_flips_the_images_it_draws():
    flip = T.RandomHorizontalFlip(0.5, generator=np.random.default_rng(0))
    out = flip(BATCH)
    drawn = np.random.default_rng(0).random(5) < 0.5
    for i in range(5):
        np.testing.assert_array_equal(out[i], BATCH[i, :, :, ::-1] if drawn[i] else BATCH[i])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(BATCH), BATCH[..., ::-1])


def test_affine_identity_half_turn_and_shift():
    zero = np.zeros(5)
    np.testing.assert_allclose(T.affine(BATCH, zero, zero, zero), BATCH, atol=1e-6)
    np.testing.assert_allclose(T.affine(BATCH, np.full(5, np.pi), zero, zero), BATCH[..., ::-1, ::-1], atol=1e-5)
    shifted = T.affine(BATCH, zero, np.full(5, 2.0), np.full(5, 1.0))  # 2 right, 1 down, zeros in
    np.testing.assert_allclose(shifted[..., 1:, 2:], BATCH[..., :-1, :-2], atol=1e-6)
    assert not shifted[..., :1, :].any() and not shifted[..., :, :2].any()
    tc.manual_seed(1)
    a = T.RandomAffine(10, (0.1, 0.1))(BATCH)
    tc.manual_seed(1)
    np.testing.assert_array_equal(T.RandomAffine(10, (0.1, 0.1))(BATCH), a)
    assert a.shape == BATCH.shape and np.isfinite(a).all()



def test_affine_scale_reads_the_source_at_the_scaled_distance_from_the_centre():
    zero, one = np.zeros(5), np.ones(5)
    np.testing.assert_allclose(T.affine(BATCH, zero, zero, zero, one), BATCH, atol=1e-6)
    # BATCH is 7 x 9, centre (3, 4): at scale 2 the output at (3 + 2a, 4 + 2b) reads (3 + a, 4 + b)
    doubled = T.affine(BATCH, zero, zero, zero, np.full(5, 2.0))
    np.testing.assert_allclose(doubled[..., 1::2, ::2], BATCH[..., 2:5, 2:7], atol=1e-6)
    # at scale 1/2 the output at (3 + a, 4 + b) reads (3 + 2a, 4 + 2b): zeros where that is outside
    halved = T.affine(BATCH, zero, zero, zero, np.full(5, 0.5))
    np.testing.assert_allclose(halved[..., 2:5, 2:7], BATCH[..., 1::2, ::2], atol=1e-6)
    assert not halved[..., :1, :].any() and not halved[..., :, :1].any() and not halved[..., 6:, :].any()
    # a drawn scale: within the range, and the same draws of angle and shift as without a scale
    drawn = T.RandomAffine(0, scale=(2.0, 2.0), generator=np.random.default_rng(0))(BATCH)
    np.testing.assert_allclose(drawn, doubled, atol=1e-6)
    without = T.RandomAffine(10, (0.1, 0.1), generator=np.random.default_rng(4))(BATCH)
    unit = T.RandomAffine(10, (0.1, 0.1), scale=(1.0, 1.0), generator=np.random.default_rng(4))(BATCH)
    np.testing.assert_allclose(unit, without, atol=1e-6)

def test_compose_in_order():
    pipeline = T.Compose([T.ToTensor(), T.RandomHorizontalFlip(1.0), T.Normalize(0.5, 0.5)])
    images = rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)
    np.testing.assert_allclose(pipeline(images)[:, 0], (images[..., ::-1] / 255 - 0.5) / 0.5, atol=1e-6)  # float32
    with pytest.raises(TypeError, match="list of callables"):
        T.Compose([1])
