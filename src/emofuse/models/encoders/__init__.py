from emofuse.models.encoders.base import ENCODERS, Encoder, compute_bound
from emofuse.models.encoders import cnn1d, linear, mlp, resnext3d, touch3d, touch_stats, transformer  # noqa: F401  (registration)

__all__ = ["ENCODERS", "Encoder", "compute_bound"]
