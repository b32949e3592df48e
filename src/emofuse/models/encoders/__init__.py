from emofuse.models.encoders.base import ENCODERS, Encoder
from emofuse.models.encoders import cnn1d, mlp, resnext3d  # noqa: F401  (registration)

__all__ = ["ENCODERS", "Encoder"]
