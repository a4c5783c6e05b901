"""Sequence tasks: an episode reads one source and writes one output sequence token by token;
the output is rewarded as a whole (edit distance, exact match, BLEU).

``Seq/G2P-v0`` is grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary (or any
two-column TSV through ``env.kwargs.corpus``). See docs/sequences.md.
"""

from rlfleet.envs.sequences.task import METRICS, SeqOptions, SeqTask, error_rates, load_task, score

#: Environment ids of sequence tasks (all take the options of :class:`SeqOptions` as kwargs).
SEQ_IDS = ("Seq/G2P-v0",)

__all__ = ["METRICS", "SEQ_IDS", "SeqOptions", "SeqTask", "error_rates", "load_task", "score"]
