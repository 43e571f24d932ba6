import torch

from trainers.augment import Augment


def batch(n=8, side=16):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, side, side, generator=gen)


def test_flips_mirror_exactly_the_images_their_matrices_say():
    x = batch()
    out, theta = Augment(flip_h=True, flip_v=True)(x, torch.Generator().manual_seed(1))
    for image, original, matrix in zip(out, x, theta):
        dims = [d for d, sign in ((2, matrix[0, 0]), (1, matrix[1, 1])) if sign < 0]
        expected = original.flip(dims) if dims else original
        assert torch.allclose(image, expected, atol=1e-5)
    assert {float(v) for v in theta[:, 0, 0]} == {-1.0, 1.0}  # some flipped, some not


def test_blur_smooths_sharpen_roughens_and_colour_changes_stay_in_range():
    x, gen = batch(), torch.Generator().manual_seed(2)
    roughness = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    blurred, _ = Augment(blur=1.0)(x, gen)
    sharpened, _ = Augment(sharpen=1.0)(x.mul(0.5).add(0.25), gen)
    assert roughness(blurred) < 0.8 * roughness(x) and roughness(sharpened) > roughness(x.mul(0.5).add(0.25))
    jittered, theta = Augment(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)(x, gen)
    assert theta is None and jittered.shape == x.shape and 0 <= jittered.min() and jittered.max() <= 1
    assert not torch.allclose(jittered, x)


def test_nothing_asked_changes_nothing():
    x = batch()
    out, theta = Augment()(x, torch.Generator())
    assert theta is None and torch.equal(out, x)
