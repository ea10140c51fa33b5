"""An interactive latent explorer: one slider per latent dimension, the decoded image redrawn as they move.

The lecture's web demo, offline. The widget wraps a pure update function, so tests drive it without a browser:

    explorer = LatentExplorer(decode, dims=2)
    explorer.widget()            # display in a notebook
    explorer.set_code([1.0, -0.5])  # moves the sliders there too; returns the decoded image (28, 28)

The sliders are the one source of truth: the code, the image and the readout always show the sliders' values.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from utils.widgets import slider_names

DISPLAY_SCALE = 6  # 28 px -> 168 px on screen


def image_png(image: np.ndarray, scale: int = DISPLAY_SCALE) -> bytes:
    """A (H, W) image in [0, 1] as PNG bytes, dark ink on white, enlarged `scale` times without smoothing."""
    pixels = ((1.0 - np.clip(image, 0.0, 1.0)) * 255).round().astype(np.uint8)
    img = Image.fromarray(pixels, mode="L").resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


class LatentExplorer:
    """Sliders for the chosen latent dimensions of a decoder; the rest of the code stays at `base` (default 0).

    decode: maps codes (1, latent_dim) to images in [0, 1] with 784 pixels (e.g. lambda z: sigmoid(decoder(z))).
    dims: the latent dimensions that get a slider (an int n means the first n); latent_dim: the code's length.
    """

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], dims: int | Sequence[int], latent_dim: int | None = None,
                 value_range: tuple[float, float] = (-3.0, 3.0), step: float = 0.1, base: Sequence[float] | None = None,
                 side: int = 28) -> None:
        self.dims = list(range(dims)) if isinstance(dims, int) else list(dims)
        self.latent_dim = latent_dim if latent_dim is not None else max(self.dims) + 1
        if max(self.dims) >= self.latent_dim:
            raise ValueError(f"slider dimension {max(self.dims)} does not exist in a {self.latent_dim}-d code")
        self.decode, self.side = decode, side
        self.code = torch.zeros(self.latent_dim) if base is None else torch.as_tensor(base, dtype=torch.float32).clone()
        self.sliders = [widgets.FloatSlider(value=float(self.code[d]), min=value_range[0], max=value_range[1], step=step,
                                            description=f"z[{d}]", continuous_update=True) for d in self.dims]
        self.image_widget = widgets.Image(format="png")
        self.readout = widgets.Label()
        self._moving = False  # True while set_code moves several sliders: draw once, at the end
        for slider in self.sliders:
            slider.observe(self._on_slider, names="value")
        self.image = self._draw()

    def set_code(self, values: Sequence[float]) -> np.ndarray:
        """Move the sliders to `values` (one per slider, clipped to their range), redraw, and return the decoded
        image (side, side)."""
        if len(values) != len(self.dims):
            raise ValueError(f"expected {len(self.dims)} values (one per slider), got {len(values)}")
        self._moving = True
        try:
            for slider, v in zip(self.sliders, values, strict=True):
                slider.value = float(v)
        finally:
            self._moving = False
        return self._draw()

    def _draw(self) -> np.ndarray:
        """Decode the sliders' code; update the image and the readout."""
        for d, slider in zip(self.dims, self.sliders, strict=True):
            self.code[d] = float(slider.value)
        with torch.no_grad():
            decoded = self.decode(self.code[None].to(_device_of(self.decode)))
        self.image = decoded.detach().cpu().reshape(self.side, self.side).numpy()
        self.image_widget.value = image_png(self.image)
        shown = ", ".join(f"{v:+.1f}" for v in self.code.tolist()[:8])
        self.readout.value = f"z = [{shown}{', …' if self.latent_dim > 8 else ''}]"
        return self.image

    def _on_slider(self, _change: dict) -> None:
        if not self._moving:
            self._draw()

    def widget(self) -> widgets.Widget:
        """The sliders beside the decoded image, ready to display."""
        return widgets.HBox([widgets.VBox([*self.sliders, self.readout, slider_names()]), self.image_widget])


def _device_of(decode: Callable) -> torch.device:
    """The device of a decoder's parameters when `decode` is a bound method or module, else the CPU."""
    owner = getattr(decode, "__self__", decode)
    if isinstance(owner, torch.nn.Module):
        return next(owner.parameters()).device
    return getattr(decode, "device", torch.device("cpu"))
