"""Animated GIFs of image observations, for a final evaluation's ``final_eval.gif``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_gif(frames: list[np.ndarray], path: str | Path, fps: int = 30) -> Path:
    """Animated GIF of image observations (C,H,W stacks show their newest frame;
    MinAtar-style channel maps are coloured by channel)."""
    from PIL import Image

    images = []
    for obs in frames:
        if obs.ndim == 3 and obs.shape[1:] == (84, 84):
            img = obs[-1].astype(np.uint8)
            images.append(Image.fromarray(img).resize((168, 168), Image.NEAREST))
        elif obs.ndim == 3:
            channels = obs.shape[0]
            palette = (
                np.array(
                    [[(37 * c) % 255, (91 * c) % 255, (173 * c) % 255] for c in range(channels)]
                )
                + 60
            ).clip(0, 255)
            occupied = obs.astype(bool)
            idx = np.argmax(occupied, axis=0)
            rgb = np.where(occupied.any(axis=0)[..., None], palette[idx], 0).astype(np.uint8)
            images.append(
                Image.fromarray(rgb).resize((obs.shape[2] * 16, obs.shape[1] * 16), Image.NEAREST)
            )
        else:
            raise ValueError(f"cannot render observations of shape {obs.shape} as video")
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
