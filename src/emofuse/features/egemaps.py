"""eGeMAPS / ComParE functionals with openSMILE (Eyben et al. 2016): one vector per clip."""

from __future__ import annotations

from typing import Literal

import numpy as np

from emofuse.features.base import EXTRACTORS, AudioExtractor, ExtractorParams


class OpenSmileParams(ExtractorParams):
    feature_set: Literal["eGeMAPSv02", "ComParE_2016"] = "eGeMAPSv02"


@EXTRACTORS.register("egemaps")
class OpenSmileFunctionals(AudioExtractor):
    Params = OpenSmileParams

    def __init__(self, params: OpenSmileParams):
        super().__init__(params)
        import opensmile

        self._smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, params.feature_set),
            feature_level=opensmile.FeatureLevel.Functionals,
        )

    def compute(self, wave: np.ndarray) -> np.ndarray:
        return self._smile.process_signal(wave, self.sample_rate).to_numpy(dtype=np.float32)[0]
