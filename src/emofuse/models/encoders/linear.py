"""No hidden layer: the features go straight to the branch's linear classifier, so the branch is a multinomial
logistic regression (its dropout and the optimiser's weight decay the regularisers). The smallest candidate of a
nested capacity choice: on a few hundred samples it is often the model the data can support."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from torch import nn

from emofuse.models.encoders.base import ENCODERS, Encoder


@ENCODERS.register("linear")
class LinearEncoder(Encoder):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, input_dim: int, sequence: bool = False):
        super().__init__()
        if sequence:
            raise ValueError("the linear encoder takes clip-level vectors; use cnn1d for frame sequences")
        self.stages = nn.ModuleList()
        self.stage_dims = []
        self.out_dim = input_dim
