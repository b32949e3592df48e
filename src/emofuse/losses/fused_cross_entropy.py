"""Cross-entropy on the fused logits of a feature- or model-level fusion with its own classifier.

The branch classifiers of such models read detached features (probes), so their cross-entropy, added here,
trains only the probes and reports each modality's accuracy without shaping the shared encoders. A probe is trained on
the samples that have its modality only; the fused term takes every sample (an absent modality's input being its
training mean: mean imputation).
"""

from __future__ import annotations

import torch.nn.functional as F

from emofuse.losses.base import LOSSES, Loss, LossOutput, branch_presence, present_mean


@LOSSES.register("fused_cross_entropy")
class FusedCrossEntropy(Loss):
    trains_fused_head = True

    def forward(self, output, target, epoch) -> LossOutput:
        if output.fused_logits is None:
            raise ValueError("fused_cross_entropy needs a fusion with its own classifier (concat, cbp, tfn, cfn_sr)")
        fused = F.cross_entropy(output.fused_logits.float(), target)
        presence = branch_presence(output)
        probes = {m: present_mean(F.cross_entropy(z.float(), target, reduction="none"), presence.get(m))
                  for m, z in output.branch_logits.items()}
        terms = {"ce/fused": fused.item(), **{f"probe_ce/{m}": v.item() for m, v in probes.items()}}
        return LossOutput(total=fused + sum(probes.values()), terms=terms)
