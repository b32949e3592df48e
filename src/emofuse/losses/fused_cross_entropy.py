"""Cross-entropy on the fused logits of a feature- or model-level fusion with its own classifier.

The branch classifiers of such models read detached features (probes), so their cross-entropy, added here,
trains only the probes and reports each modality's accuracy without shaping the shared encoders.
"""

from __future__ import annotations

import torch.nn.functional as F

from emofuse.losses.base import LOSSES, Loss, LossOutput


@LOSSES.register("fused_cross_entropy")
class FusedCrossEntropy(Loss):
    trains_fused_head = True

    def forward(self, output, target, epoch) -> LossOutput:
        if output.fused_logits is None:
            raise ValueError("fused_cross_entropy needs a fusion with its own classifier (concat, cbp, tfn, cfn_sr)")
        fused = F.cross_entropy(output.fused_logits.float(), target)
        probes = {m: F.cross_entropy(z.float(), target) for m, z in output.branch_logits.items()}
        terms = {"ce/fused": fused.item(), **{f"probe_ce/{m}": v.item() for m, v in probes.items()}}
        return LossOutput(total=fused + sum(probes.values()), terms=terms)
