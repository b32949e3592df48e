"""emofuse: multimodal emotion recognition with honest, speaker-independent evaluation.

    import emofuse
    model = emofuse.load_model()                 # the bundled default (emofuse.zoo), no training
    model.predict(["clip.wav"])                  # typed predictions: pred, probs, modality_probs, missing
    run = emofuse.load_run("runs/demo")          # a run directory of `emofuse cv` or `emofuse fit`
    emofuse.cross_validate("configs/ravdess_mars.yaml", out="runs/mars")

The functions are those of :mod:`emofuse.api`.
"""

from __future__ import annotations

from emofuse.api import (Prediction, Run, compare, cross_validate, list_models, list_parts, load_config, load_model,
                         load_run)

__version__ = "0.1.0"
__all__ = ["Prediction", "Run", "compare", "cross_validate", "list_models", "list_parts", "load_config", "load_model",
           "load_run"]
