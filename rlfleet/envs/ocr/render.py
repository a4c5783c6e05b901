"""Synthetic word images, rendered reproducibly with the TrueType fonts matplotlib ships.

Image ``i`` of a stream is drawn from ``numpy.random.default_rng([seed, i])`` alone, so any
process renders the same pixels for the same ``(seed, i, word, fonts)`` -- the learner, the
actors and the evaluator need not send images around to agree on them. Each image: one word in
one font at a random size, stretched horizontally (about 1.5x with jitter, as the source
recognizer was trained), rotated a little, blurred, on a random background with noise; scaled
to a fixed height and a variable width (at most ``max_width``), grayscale uint8, ink bright on 0
padding. Nothing is downloaded: the fonts are read from ``matplotlib.get_data_path()``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlfleet.errors import ConfigError

__all__ = ["HELD_OUT_FONTS", "TRAIN_FONTS", "Renderer", "RenderStyle", "font_dir"]

#: Fonts seen in training: several families (sans, serif, mono, STIX, Computer Modern) and styles.
TRAIN_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
)
#: Fonts never seen in training: other styles of the same families, and two other faces.
HELD_OUT_FONTS = (
    "DejaVuSerif-Bold.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "STIXGeneralItalic.ttf",
    "cmtt10.ttf",
)


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@dataclass(frozen=True)
class RenderStyle:
    """Ranges of the random rendering parameters."""

    stretch: float = 1.5  # horizontal stretch (jittered by +-stretch_jitter)
    stretch_jitter: float = 0.2
    max_rotation: float = 2.0  # degrees
    max_blur: float = 0.8  # Gaussian blur radius in pixels (of the final height)
    noise: float = 12.0  # std of additive pixel noise (0..255 scale), drawn up to this


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int):  # noqa: ANN202 - PIL type
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


class Renderer:
    """Renders words at ``height`` pixels, at most ``max_width`` wide, with ``fonts``."""

    def __init__(
        self,
        height: int,
        max_width: int,
        fonts: tuple[str, ...],
        style: RenderStyle | None = None,
    ) -> None:
        folder = font_dir()
        missing = [f for f in fonts if not (folder / f).is_file()]
        if missing:
            raise ConfigError(f"fonts {missing} are not in {folder}; available: TRAIN_FONTS")
        self.height, self.max_width = int(height), int(max_width)
        self.fonts = tuple(str(folder / f) for f in fonts)
        self.style = style or RenderStyle()

    def render_one(self, word: str, rng: np.random.Generator) -> np.ndarray:
        """One word image ``[height, w]`` uint8 (``w <= max_width``) from ``rng``."""
        from PIL import Image, ImageDraw, ImageFilter

        st, h = self.style, self.height
        font_path = self.fonts[int(rng.integers(len(self.fonts)))]
        size = int(rng.integers(28, 44))  # rendered large, then scaled down to `height`
        font = _font(font_path, size)
        left, top, right, bottom = font.getbbox(word)
        pad = size // 4
        bg = int(rng.integers(0, 90))
        ink = int(rng.integers(min(bg + 100, 255), 256))
        canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), bg)
        ImageDraw.Draw(canvas).text((pad - left, pad - top), word, fill=ink, font=font)
        angle = float(rng.uniform(-st.max_rotation, st.max_rotation))
        canvas = canvas.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=bg)
        stretch = st.stretch * float(rng.uniform(1 - st.stretch_jitter, 1 + st.stretch_jitter))
        width = round(canvas.width * h / canvas.height * stretch)
        width = int(min(max(width, 4), self.max_width))
        canvas = canvas.resize((width, h), Image.BILINEAR)
        blur = float(rng.uniform(0, st.max_blur))
        if blur > 0.1:
            canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
        img = np.asarray(canvas, np.float32)
        img += rng.normal(0, rng.uniform(0, st.noise), img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)

    def render(self, words: list[str], seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images ``[N, height, max_width]`` uint8 (0 right of each width) and widths ``[N]``
        of ``words[j]`` drawn as image ``ids[j]`` of the stream ``seed``."""
        n = len(words)
        out = np.zeros((n, self.height, self.max_width), np.uint8)
        widths = np.zeros(n, np.int64)
        for j, (word, i) in enumerate(zip(words, np.asarray(ids, np.int64), strict=True)):
            img = self.render_one(word, np.random.default_rng([int(seed), int(i)]))
            out[j, :, : img.shape[1]] = img
            widths[j] = img.shape[1]
        return out, widths
