from emofuse.models.fusion.base import FUSIONS, Fusion, FusionInputs, FusionOutput
from emofuse.models.fusion import average, cbp, cfn_sr, concat, mmtm, msaf, tfn  # noqa: F401  (registration)

__all__ = ["FUSIONS", "Fusion", "FusionInputs", "FusionOutput"]
