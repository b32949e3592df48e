from emofuse.losses.base import LOSSES, BranchReweightingLoss, LossOutput
from emofuse.losses import cross_entropy, focal, fused_cross_entropy, mars, multiplicative  # noqa: F401  (registration)

__all__ = ["LOSSES", "BranchReweightingLoss", "LossOutput"]
