from emofuse.models.fusion.base import FUSIONS, Fusion, FusionOutput
from emofuse.models.fusion import average  # noqa: F401  (registration)

__all__ = ["FUSIONS", "Fusion", "FusionOutput"]
