"""In-memory mini-batches of multimodal features (clip vectors, padded frame sequences, face clips).

Features of a few thousand clips fit in memory; slicing whole tensors is several times faster on
a laptop CPU than a per-item DataLoader. Face clips are the exception: they stay uint8 (memory-mapped
from the feature cache) and only the rows of a batch are standardised and padded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from emofuse.datasets.normalize import StandardizedClips


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    lengths: dict[str, torch.Tensor | None]
    target: torch.Tensor
    index: torch.Tensor  # rows of the source data, to map predictions back
    speaker: torch.Tensor | None = None  # training speaker index per row, where the data carries it
    class_mask: torch.Tensor | None = None  # (B, K) booleans: the classes of each row's corpus (several corpora only)
    presence: dict[str, torch.Tensor] | None = None  # modality -> (B,) booleans, for a modality some rows lack

    @property
    def model_kwargs(self) -> dict:
        """What a model takes beside inputs and lengths: ``presence`` where some rows lack a modality (only then, so
        that a model without missing modalities, e.g. a task's, needs no such argument)."""
        return {"presence": self.presence} if self.presence else {}

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            inputs={m: x.to(device, non_blocking=True) for m, x in self.inputs.items()},
            lengths={m: (n.to(device) if n is not None else None) for m, n in self.lengths.items()},
            target=self.target.to(device),
            index=self.index,
            speaker=self.speaker.to(device) if self.speaker is not None else None,
            class_mask=self.class_mask.to(device) if self.class_mask is not None else None,
            presence={m: p.to(device) for m, p in self.presence.items()} if self.presence else None,
        )


def pad_sequences(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    padded = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1], dtype=torch.float32)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return padded, lengths


def windows(lengths: torch.Tensor, crop: int | None, generator: torch.Generator | None) -> torch.Tensor | None:
    """Random start of a ``crop``-frame window in each sequence, or None when every sequence fits."""
    if crop is None or int(lengths.max()) <= crop:
        return None
    return (torch.rand(len(lengths), generator=generator) * (lengths - crop).clamp(min=0).add(1)).long()


def clip_batch(clips: StandardizedClips, rows: torch.Tensor, lens: torch.Tensor, crop: int | None,
               generator: torch.Generator | None, hflip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of face clips as one zero-padded float tensor (B, T, 3, S, S) and their lengths."""
    starts = windows(lens, crop, generator)
    lens = lens.clamp(max=crop) if starts is not None else lens
    out = torch.zeros(len(rows), int(lens.max()), *clips.frame_shape(), dtype=torch.float32)
    for j, row in enumerate(rows.tolist()):
        start = int(starts[j]) if starts is not None else 0
        out[j, : int(lens[j])] = torch.from_numpy(clips.window(row, start, int(lens[j])))
    if hflip > 0:
        mirror = torch.rand(len(rows), generator=generator) < hflip
        out[mirror] = out[mirror].flip(-1)
    return out, lens


class TensorData:
    """Rows of per-modality features with targets; ``batches`` yields them in (shuffled) batches. ``class_mask``
    (N, K): the classes each row may be trained towards and predicted as (its corpus's), where not all. ``presence``:
    per modality some rows lack (a corpus without it), (N,) booleans of the rows that have it."""

    def __init__(self, features: dict[str, np.ndarray | list[np.ndarray] | StandardizedClips], target: np.ndarray,
                 speaker: np.ndarray | None = None, class_mask: np.ndarray | None = None,
                 presence: dict[str, np.ndarray] | None = None):
        self.speaker = torch.as_tensor(speaker, dtype=torch.long) if speaker is not None else None
        self.class_mask = torch.as_tensor(class_mask, dtype=torch.bool) if class_mask is not None else None
        self.presence = {m: torch.as_tensor(p, dtype=torch.bool) for m, p in (presence or {}).items() if not p.all()}
        self.inputs: dict[str, torch.Tensor] = {}
        self.lengths: dict[str, torch.Tensor | None] = {}
        self.clips: dict[str, StandardizedClips] = {}
        for m, values in features.items():
            self.set_modality(m, values)
        self.target = torch.as_tensor(target)

    def set_modality(self, m: str, values: np.ndarray | list[np.ndarray] | StandardizedClips) -> None:
        if isinstance(values, StandardizedClips):
            self.clips[m], self.lengths[m] = values, torch.tensor(values.lengths(), dtype=torch.long)
        elif isinstance(values, list):
            self.inputs[m], self.lengths[m] = pad_sequences(values)
        else:
            self.inputs[m], self.lengths[m] = torch.as_tensor(values, dtype=torch.float32), None

    def __len__(self) -> int:
        return len(self.target)

    def present(self, m: str) -> np.ndarray:
        """(N,) booleans: the rows that have modality ``m`` (all but where ``presence`` says otherwise)."""
        return self.presence[m].numpy() if m in self.presence else np.ones(len(self), bool)

    def batch(self, rows: torch.Tensor, crop: int | None = None, generator: torch.Generator | None = None,
              hflip: float = 0.0) -> Batch:
        """The given rows; with ``crop``, sequences longer than ``crop`` frames are cut to a random window; with
        ``hflip``, each face clip is mirrored with that probability."""
        inputs, lengths = {}, {}
        for m, x in self.inputs.items():
            lens = self.lengths[m]
            if lens is None:
                inputs[m], lengths[m] = x[rows], None
                continue
            lens = lens[rows]
            starts = windows(lens, crop, generator)
            if starts is None:
                inputs[m], lengths[m] = x[rows, : int(lens.max())], lens
                continue
            window = starts[:, None] + torch.arange(crop)[None, :]
            inputs[m] = x[rows[:, None], window.clamp(max=x.shape[1] - 1)]
            lengths[m] = lens.clamp(max=crop)
        for m, clips in self.clips.items():
            inputs[m], lengths[m] = clip_batch(clips, rows, self.lengths[m][rows], crop, generator, hflip)
        return Batch(inputs, lengths, self.target[rows], rows, self.speaker[rows] if self.speaker is not None else None,
                     self.class_mask[rows] if self.class_mask is not None else None,
                     {m: p[rows] for m, p in self.presence.items()} or None)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False, crop: int | None = None, hflip: float = 0.0) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        stop = len(self) - (len(self) % batch_size if drop_last and len(self) > batch_size else 0)
        for start in range(0, stop, batch_size):
            yield self.batch(order[start : start + batch_size], crop, generator, hflip)


class RedrawnData(TensorData):
    """Training rows whose features are drawn anew at the start of every epoch: ``draw(epoch)`` gives the modalities
    to replace (train-as-you-test enrolment draws, protocol/enrolment.py). The trainer calls ``start_epoch``."""

    def __init__(self, features, target: np.ndarray, draw: Callable[[int], dict], speaker: np.ndarray | None = None,
                 class_mask: np.ndarray | None = None, presence: dict[str, np.ndarray] | None = None):
        super().__init__(features, target, speaker, class_mask, presence)
        self.draw = draw

    def start_epoch(self, epoch: int) -> None:
        for m, values in self.draw(epoch).items():
            self.set_modality(m, values)
