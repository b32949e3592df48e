"""Per-step rates given as timescales in passes over the training rows, so that one setting serves every data size.

Both of the recipe's averages are exponential in optimiser steps. The EMA of decay d averages the last
1 / (1 - d) steps. With decoupled weight decay, AdamW's weights are themselves an exponential average
of its recent updates over 1 / (lr * weight_decay) steps (Wang & Aitchison, "How to set AdamW's weight
decay as you scale model and dataset size", ICML 2025). Fixed per step, both span 16 times more passes
over 500 training clips than over 8,000: on small data the EMA holds early weights for most of the run
and the decay barely regularises before it ends. Given as P passes (``{passes: P}``), with
S = optimiser steps per pass over the training rows:

    ema_decay    = 1 - 1 / (P * S)
    weight_decay = 1 / (lr * P * S)

On Hume-Vidmimic2 (8,072 clips, batch 32: 252 steps per pass) ``ema_decay: {passes: 4}`` is 0.99901, the
paper's 0.999; on 500 clips (15 steps per pass) it is 0.983.
"""

from __future__ import annotations

from emofuse.config.schema import Passes
from emofuse.core.registry import ConfigError


def resolve_ema_decay(setting: float | Passes | None, steps_per_pass: int) -> float | None:
    """The EMA decay per step: the number as given, or the one whose average spans ``setting.passes`` passes."""
    if isinstance(setting, Passes):
        steps = setting.passes * steps_per_pass
        if steps <= 1:
            raise ConfigError(f"train.ema_decay {{passes: {setting.passes:g}}} spans {steps:g} optimiser steps on these "
                              f"data ({steps_per_pass} per pass): an EMA needs more than one")
        return 1.0 - 1.0 / steps
    return setting


def resolve_weight_decay(setting: float | Passes, lr: float, steps_per_pass: int) -> float:
    """AdamW's weight_decay: the number as given, or the one whose weight average spans ``setting.passes`` passes."""
    if isinstance(setting, Passes):
        return 1.0 / (lr * setting.passes * steps_per_pass)
    return float(setting)
