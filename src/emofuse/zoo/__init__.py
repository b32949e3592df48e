"""Bundled models: trained emofuse models shipped inside the package, each a model directory with a card.

A bundled model is what ``emofuse fit`` writes (one model trained on every speaker of its corpus, read like a cv run
with one member) plus ``card.json``: what it was trained on and its licence, its classes and features, the nested
cross-validation estimates of the recipe for a new speaker with no, some and all enrolment clips, cross-corpus
accuracy where it could be measured, its known limits, the command that rebuilds it and the SHA-256 of its weights.
``emofuse models`` lists them; ``emofuse predict FILE`` and ``emofuse serve`` use :data:`DEFAULT` when no run
directory is given; :func:`emofuse.load_model` opens one from Python.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from emofuse.core.registry import ConfigError

DEFAULT = "speech"
WEIGHTS = Path("folds") / "fold_0" / "best.pt"


def _root() -> Path:
    return Path(str(resources.files("emofuse.zoo")))


def names() -> list[str]:
    return sorted(p.name for p in _root().iterdir() if (p / "card.json").is_file())


def model_dir(name: str | None = None) -> Path:
    """The directory of bundled model ``name`` (None: the default one); an unknown name lists the known ones."""
    name = name or DEFAULT
    path = _root() / name
    if not (path / "card.json").is_file():
        raise ConfigError(f"no bundled model '{name}' (bundled: {', '.join(names()) or 'none'}); "
                          f"or give a run directory written by `emofuse cv` or `emofuse fit`")
    return path


def card(name: str) -> dict:
    return json.loads((model_dir(name) / "card.json").read_text())


def weights_sha256(directory: Path) -> str:
    return hashlib.sha256((Path(directory) / WEIGHTS).read_bytes()).hexdigest()


def _estimate(value: dict) -> str:
    low, high = value["interval"]
    return (f"{value['accuracy']:.3f} [{low:.3f}, {high:.3f}] ({value['n_clips']} clips, "
            f"{value['n_speakers']} speakers)")


def _clips_known(k: int) -> str:
    return "a file on its own" if k == 0 else f"{k} clips of the speaker known"


def format_card(c: dict) -> str:
    """A card as text for the console and the docs: what a user must know before trusting the model."""
    t, e = c["training_data"], c["estimates"]
    lines = [f"# {c['name']}: {c['task']}", "",
             f"classes: {', '.join(c['classes'])}",
             f"input: {', '.join(c['modalities'])}; features: {c['features']['name']} {c['features']['params']}",
             f"trained on: {t['corpus']}, {t['speakers']} speakers, {t['clips']} clips, epochs 0..{c['epoch']}",
             f"licence: {t['licence']}. {t['licence_note']}", "",
             "accuracy for a new speaker (pooled, 95 % cluster-bootstrap interval over test speakers):"]
    for key, value in e.items():
        if key.startswith("k="):
            k = int(key[2:])
            how = _clips_known(k) + ("" if k == 0 else " (emofuse predict --speaker)")
            lines.append(f"  {how}: {_estimate(value)}")
            lines += [f"    {corpus}: {_estimate(v)}" for corpus, v in value.get("per_corpus", {}).items()]
    lines += [f"  protocol: {e['protocol']}", f"  nesting: {e['nesting']}"]
    for row in c.get("leave_one_corpus_out") or []:
        lines.append(f"on a corpus it never heard (trained on {' + '.join(row['trained_on'])} only, scored on every "
                     f"{row['held_out']} speaker among {len(row['k=0']['classes'])} shared classes):")
        lines += [f"  {_clips_known(int(k[2:]))}: {_estimate(row[k])}, UA {row[k]['ua']:.3f}" for k in ("k=0", "k=10")]
    r = c.get("recording_conditions")
    if r:
        lines.append(f"under other recording conditions (the cross-validation's test speakers, "
                     f"{_clips_known(r['enrolment_clips'])}; trained "
                     f"{'on augmented copies of ' + ', '.join(r['trained_on']['kinds']) if r['trained_on'] else 'on clean clips'}):")
        lines += [f"  {name}: {v['accuracy']:.3f} [{v['accuracy_ci'][0]:.3f}, {v['accuracy_ci'][1]:.3f}]"
                  + (f", {100 * v['minus_clean']['difference']:+.1f} points" if "minus_clean" in v else "")
                  for name, v in r["scores"].items()]
    x = c.get("cross_corpus")
    if x:
        lines.append(f"cross-corpus: {x['corpus']}, {x['correct']} of {x['n_clips']} clips correct "
                     f"({x['n_speakers']} speakers; {x['note']})")
    lines += ["limits:", *(f"  - {limit}" for limit in c["limits"]),
              f"rebuild: {c['reproduce']}", f"weights: {c['weights_file']} sha256 {c['weights_sha256']}", ""]
    return "\n".join(lines)
