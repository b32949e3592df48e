from emofuse.losses.base import LOSSES, BranchReweightingLoss, LossOutput
from emofuse.losses import cross_entropy, mars  # noqa: F401  (registration)

__all__ = ["LOSSES", "BranchReweightingLoss", "LossOutput"]
