"""Torch-free checks of a sequence run's task, for the launcher process.

``spec.prepare`` runs in the launcher, which never imports torch (the families build networks,
so they do). These load the task -- corpus, word list, split and option errors before any
process starts -- and check what the model needs of it, without a network.
"""

from __future__ import annotations

from typing import Any

from rlfleet.errors import ConfigError

__all__ = ["TASK_CHECKS", "check_g2p", "check_ocr", "check_ocr_height"]


def check_g2p(config: Any) -> None:
    """Load the G2P task (corpus and length-cap errors)."""
    from rlfleet.envs.sequences import SeqOptions, load_task

    load_task(SeqOptions.parse(config.env.kwargs))


def check_ocr_height(phi: int, height: int) -> None:
    """ConfigError when ``recognizer.phi`` reads images of another height than the task's."""
    from rlfleet.models.scaling import scaled_shape

    wanted = scaled_shape(phi).height
    if wanted != height:
        raise ConfigError(
            f"recognizer.phi {phi} reads images {wanted} pixels high but env.kwargs.height is "
            f"{height}; set env.kwargs.height = {wanted}"
        )


def check_ocr(config: Any) -> None:
    """Load the OCR task (word list, fonts, options) and check the recognizer's input height."""
    from rlfleet.envs.ocr.task import OcrOptions, load_task

    task = load_task(OcrOptions.parse(config.env.kwargs))
    check_ocr_height(config.recognizer.phi, task.height)


#: env.id -> its task's torch-free check (the ids of family.FAMILIES)
TASK_CHECKS = {"Seq/G2P-v0": check_g2p, "OCR/Words-v0": check_ocr}
