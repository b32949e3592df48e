"""Per-frame facial-expression probabilities: fer's mini-Xception CNN (FER2013's 7 classes) run with LiteRT.

The model ships inside emofuse (features/visual/models, MIT, with its provenance); only the ``ai-edge-litert``
interpreter is needed (the ``expression`` extra), not TensorFlow. Preprocessing follows fer's: a square grey crop
of the face box enlarged by about 10 pixels a side, resized to 64 x 64 and scaled to [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emofuse.features.visual.crops import crop_face
from emofuse.core.registry import ConfigError

MODEL = Path(__file__).parent / "models" / "fer_expression.tflite"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIZE, MARGIN = 64, 0.15  # fer adds 10 px a side to the detector's box: about 15 % for the faces it is used on


class ExpressionModel:
    def __init__(self, model_path: str | Path = MODEL):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ConfigError("expression features need the LiteRT interpreter: pip install 'emofuse[expression]'") from None
        self._interpreter = Interpreter(model_path=str(model_path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.dim = len(LABELS)

    def __call__(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Probabilities of LABELS for the face in ``box`` (x0, y0, x1, y1) of an RGB frame."""
        import cv2

        grey = cv2.cvtColor(crop_face(rgb, box, SIZE, MARGIN), cv2.COLOR_RGB2GRAY).astype(np.float32)
        self._interpreter.set_tensor(self._input, (grey / 127.5 - 1.0)[None, :, :, None])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)[0].astype(np.float32)
