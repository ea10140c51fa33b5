"""The latent explorer widget, driven without a browser."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from utils.latent_explorer import LatentExplorer, image_png


def toy_decode(z: torch.Tensor) -> torch.Tensor:
    """Brightness of the left half follows z[0], of the right half z[1] (through a sigmoid)."""
    left = torch.sigmoid(z[:, :1]).expand(-1, 392).reshape(-1, 28, 14)
    right = torch.sigmoid(z[:, 1:2]).expand(-1, 392).reshape(-1, 28, 14)
    return torch.cat([left, right], dim=2).reshape(-1, 784)


def test_moving_a_slider_redraws_the_image():
    explorer = LatentExplorer(toy_decode, dims=2)
    first_png = explorer.image_widget.value
    assert explorer.image[0, 0] == pytest.approx(0.5) and explorer.image[0, 27] == pytest.approx(0.5)
    explorer.sliders[0].value = 2.0  # what a student's drag does
    assert explorer.image[0, 0] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=1e-6)
    assert explorer.image[0, 27] == pytest.approx(0.5)  # the other dimension is unchanged
    assert explorer.image_widget.value != first_png
    assert "+2.0" in explorer.readout.value


def test_set_code_on_chosen_dims_keeps_the_base():
    base = [0.0, 1.0, -1.0, 0.5]
    explorer = LatentExplorer(lambda z: torch.sigmoid(z.sum(1, keepdim=True)).expand(-1, 784), dims=[2], latent_dim=4, base=base)
    image = explorer.set_code([1.0])
    assert image.shape == (28, 28)
    assert image[5, 5] == pytest.approx(torch.sigmoid(torch.tensor(0.0 + 1.0 + 1.0 + 0.5)).item(), abs=1e-6)
    with pytest.raises(ValueError, match="one per slider"):
        explorer.set_code([1.0, 2.0])
    with pytest.raises(ValueError, match="does not exist"):
        LatentExplorer(toy_decode, dims=[5], latent_dim=2)


def test_set_code_moves_the_sliders_so_sliders_readout_and_image_agree():
    explorer = LatentExplorer(toy_decode, dims=2)
    draws = []
    original = explorer._draw
    explorer._draw = lambda: draws.append(1) or original()
    image = explorer.set_code([2.0, -1.5])
    assert [s.value for s in explorer.sliders] == [2.0, -1.5]
    assert explorer.readout.value == "z = [+2.0, -1.5]" and explorer.code.tolist() == [2.0, -1.5]
    assert image[0, 0] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=1e-6)
    assert len(draws) == 1  # one redraw for the whole move, not one per slider
    explorer.set_code([9.0, 0.0])  # beyond the sliders' range: clipped, and the code follows the slider
    assert explorer.sliders[0].value == 3.0 and explorer.code[0].item() == 3.0 and "+3.0" in explorer.readout.value


def test_png_is_dark_ink_on_white_and_enlarged():
    image = np.zeros((28, 28))
    image[:, :14] = 1.0
    img = Image.open(io.BytesIO(image_png(image)))
    assert img.size == (168, 168)
    pixels = np.asarray(img)
    assert pixels[0, 0] == 0 and pixels[0, -1] == 255
