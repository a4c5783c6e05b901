"""Scene-text recognition: synthetic word images (matplotlib's fonts, rendered from seeds) read
by a CTC recognizer, one output column per step, rewarded by minus the character error rate.
See docs/ocr.md."""

from rlfleet.envs.ocr.env import OCR_IDS

__all__ = ["OCR_IDS"]
