"""emofuse: multimodal emotion recognition with honest, speaker-independent evaluation.

    import emofuse
    model = emofuse.load_model()                 # the bundled default (emofuse.zoo), no training
    model.predict(["clip.wav"])                  # one entry per file: pred, probs, modality_probs, missing
    run = emofuse.load_run("runs/demo")          # a run directory of `emofuse cv` or `emofuse fit`
"""

from __future__ import annotations

__version__ = "0.1.0"


def load_run(run_dir, fold: int | None = None):
    """A :class:`emofuse.inference.predict.Predictor` over a run directory (the ensemble of its finished folds, or ``fold``)."""
    from emofuse.inference.predict import Predictor

    return Predictor(run_dir, fold=fold)


def load_model(name: str | None = None):
    """A bundled model by name (``emofuse models`` lists them; default: :data:`emofuse.zoo.DEFAULT`), with the same
    interface as :func:`load_run`."""
    from emofuse import zoo

    return load_run(zoo.model_dir(name or zoo.DEFAULT))
