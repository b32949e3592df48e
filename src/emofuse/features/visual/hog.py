"""Histogram-of-oriented-gradients descriptor of a face crop: the appearance feature OpenFace itself
bases its action-unit estimates on, available with OpenCV alone."""

from __future__ import annotations

import numpy as np

HOG_SIZE = 64  # crops are resized to 64 x 64: 8-pixel cells, 16-pixel blocks -> 7 x 7 blocks x 36 = 1764 values


class HogDescriptor:
    def __init__(self):
        import cv2

        self._cv2 = cv2
        self._hog = cv2.HOGDescriptor((HOG_SIZE, HOG_SIZE), (16, 16), (8, 8), (8, 8), 9)
        self.dim = int(self._hog.getDescriptorSize())

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        cv2 = self._cv2
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        if gray.shape != (HOG_SIZE, HOG_SIZE):
            gray = cv2.resize(gray, (HOG_SIZE, HOG_SIZE), interpolation=cv2.INTER_AREA)
        return self._hog.compute(gray).reshape(-1).astype(np.float32)
