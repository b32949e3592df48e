"""Bad input, fuzzed (issue 22): every parser of outside input gives a result or a project error with a message.

Each test feeds hypothesis-made input, arbitrary and near-valid (a valid name or table with one field or cell
changed, so the fuzzing gets past the first check), and fails on any other exception escaping. Inputs that once
escaped are kept as @example. Runs are derandomized and database-free, so CI sees the same cases every time.
"""

from __future__ import annotations

import pytest
import asyncio
import csv
import io
import re
import tempfile
from functools import cache
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import yaml
from hypothesis import HealthCheck, example, given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from emofuse.config.loading import load_config
from emofuse.config.overrides import set_dotted
from emofuse.data.audio import load_audio
from emofuse.data.corpora import CORPORA, write_manifest
from emofuse.core.errors import DataError
from emofuse.data.manifest import read_manifest
from emofuse.data.media import decode_audio, decode_video, probe
from emofuse.data.media_check import check_media
from emofuse.data.openface import VisualSource, clip_vector_from_frames
from emofuse.data.ravdess import EMOTIONS, parse_name
from emofuse.protocol.cross_corpus import parse_label_map
from emofuse.features.extract import in_shard, parse_shard
from emofuse.datasets.sources import FeatureFiles
from emofuse.core.registry import ConfigError
from emofuse.serve.errors import RequestError
from emofuse.serve.uploads import inspect_media, receive_upload
from emofuse.inference.speaker_groups import assign_speakers, read_speaker_map

from conftest import REPO


def fuzz(examples: int):
    """Reproducible settings: a fixed sequence of cases, no example database, no per-case deadline."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def outcome(call, *args, **kwargs):
    """The call's result, or None where it refused the input with a project error that says what is wrong; any other
    exception escapes and fails the test."""
    try:
        return call(*args, **kwargs)
    except (DataError, ConfigError) as err:
        assert str(err).strip()
        return None


def written(directory: str, name: str, content: bytes | str) -> Path:
    path = Path(directory) / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


# Characters a file name on Linux may hold (no '/', NUL or lone surrogates), the odd digits more often.
NAME_CHARS = st.one_of(st.sampled_from("²٣_-."), st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"))
ODD_CELLS = st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e400", "²", "٣", "-1", "0", "1.5", "x" * 300,
                             "~nosuchuser/a.wav", "a\nb", '"', "a,b", "\t", "é", "\x00"])
cells = st.one_of(ODD_CELLS, st.text(max_size=12))


@st.composite
def with_one_changed(draw, fields: list[str], replacement=cells) -> list[str]:
    """``fields`` with none or one of them replaced."""
    fields = list(fields)
    if fields and draw(st.booleans()):
        fields[draw(st.integers(0, len(fields) - 1))] = draw(replacement)
    return fields


@st.composite
def table(draw, core: list[str], columns: list[str], valid: dict[str, st.SearchStrategy], max_rows: int = 6) -> list[list[str]]:
    """A shuffled header of the ``core`` columns and a few of ``columns`` (one may be doubled, one header cell may be
    replaced), and rows of valid cells, a few with one cell replaced."""
    header = draw(with_one_changed(draw(st.permutations([*core, *draw(st.lists(st.sampled_from(columns), max_size=4))]))))
    rows = [[draw(valid.get(c, cells)) for c in header] for _ in range(draw(st.integers(0, max_rows)))]
    return [header, *(draw(with_one_changed(r)) for r in rows)]


# ---- RAVDESS and the other corpus file names -------------------------------------------------------

def joined(sep: str, fields: list[st.SearchStrategy], replacement: st.SearchStrategy) -> st.SearchStrategy:
    """Names of ``fields`` joined by ``sep``, one field now and then drawn from ``replacement`` instead."""
    return st.tuples(*fields).flatmap(lambda drawn: with_one_changed(list(drawn), replacement)).map(sep.join)


RAVDESS_FIELDS = [st.integers(*bounds).map("{:02d}".format) for bounds in ((1, 3), (1, 2), (1, 8), (1, 2), (1, 2), (1, 2), (1, 24))]
FIELD_TEXT = st.one_of(st.from_regex(r"\d{1,3}", fullmatch=True), st.text(max_size=3), st.sampled_from(["00", "99", "٠٣"]))


@fuzz(400)
@given(st.one_of(st.text(), st.tuples(st.sampled_from(["", "Actor_01/", "a/b/"]), joined("-", RAVDESS_FIELDS, FIELD_TEXT),
                                       st.sampled_from(["", ".wav", ".WAV", ".flac", ".mp4", ".csv", ".txt", ".wav.mp4"]))
                 .map("".join)))
def test_ravdess_names(name):
    """A RAVDESS name parses to fields in range that give the same name back; anything else is refused."""
    parsed = outcome(parse_name, name)
    if parsed is not None:
        assert parse_name(parsed.stem) == parsed and parsed.emotion_name in EMOTIONS


NAME_FIELD = st.text(NAME_CHARS, max_size=6)
CORPUS_NAMES = st.tuples(st.one_of(
    joined("_", [st.just("1001"), st.just("DFA"), st.sampled_from(["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]),
                 st.sampled_from(["LO", "MD", "HI", "XX"])], NAME_FIELD),  # CREMA-D
    joined("", [st.just("03"), st.just("a01"), st.sampled_from("WLEAFTN"), st.just("a")], NAME_FIELD),  # EmoDB
    joined("", [st.sampled_from(["", "DC_", "KL_", "XX_"]), st.sampled_from(["a", "sa", "su"]), st.just("01")], NAME_FIELD),  # SAVEE
    joined("_", [st.sampled_from(["OAF", "OA", "YAF"]), st.just("back"), st.sampled_from(["angry", "ps", "fear"])], NAME_FIELD),  # TESS
    joined("-", RAVDESS_FIELDS, NAME_FIELD),
    st.text(NAME_CHARS, min_size=1, max_size=30),
), st.sampled_from([".wav", ".mp3", ".flv", ".mp4", ".avi", ".FLAC", ".txt"])).map("".join)  # no clash with a folder
CORPUS_FOLDERS = st.sampled_from(["", "AudioWAV", "VideoFlash", "DC", "jk", "OAF_angry", "YAF_pleasant_surprised",
                                  "angry", "Anger", "Actor_01", "Actor_07", "x y", ".hidden"])
SPEAKER_REGEXES = st.sampled_from([None, r"^(\d+)", r"^(\w+)", r"(?P<speaker>[A-Z]+)_", r"(x)?", r"^", r"_(\w+)\.", r"(\d)"])
DEMOGRAPHICS = st.one_of(
    st.none(), st.binary(max_size=60),
    table(["ActorID", "Sex"], ["Age", " Sex", "Race"], {"ActorID": st.sampled_from(["1001", "1002"]),
                                                "Sex": st.sampled_from(["Male", "Female"])}).map(csv_text))


@fuzz(150)
@given(layout=st.sampled_from(CORPORA.names()), files=st.lists(st.tuples(CORPUS_FOLDERS, CORPUS_NAMES), max_size=6),
       regex=SPEAKER_REGEXES, demographics=DEMOGRAPHICS)
@example(layout="crema-d", files=[], regex=None, demographics=b"")  # EmptyDataError
@example(layout="crema-d", files=[], regex=None, demographics=b'"')  # ParserError
@example(layout="crema-d", files=[], regex=None, demographics=b"\x80")  # UnicodeDecodeError
@example(layout="crema-d", files=[], regex=None, demographics=b"\x00")  # KeyError: 'ActorID'
@example(layout="crema-d", files=[], regex=None, demographics="ActorID,Sex\n,Male\n")  # AttributeError: float .strip
@example(layout="folder", files=[("angry", "².wav")], regex=r"^(\w+)", demographics=None)  # ValueError: int('²')
def test_corpus_layouts(layout, files, regex, demographics):
    """`emofuse manifest CORPUS DIR` on folders of fuzzed file names: a listing (and the manifest it writes reads
    back) or a project error."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        for folder, name in files:
            (root / folder).mkdir(parents=True, exist_ok=True)
            if len(name.encode()) < 250:
                (root / folder / name).touch()
        root.mkdir(exist_ok=True)
        if demographics is not None:
            written(str(root), "VideoDemographics.csv", demographics)
        listing = outcome(CORPORA.get(layout), root, re.compile(regex) if regex else None)
        if listing is not None and listing.rows:
            manifest = written(tmp, "manifest.csv", write_manifest(listing, relative_to=tmp))
            outcome(read_manifest, manifest, ["audio"] if all(r.get("audio") for r in listing.rows) else ["video"],
                    training=False)


# ---- manifest CSVs ---------------------------------------------------------------------------------

MANIFEST_COLUMNS = ["id", "clip", "group", "gender", "sex", "split", "fold", "video", "audio_features", "visual_features",
                    "notes"]
MANIFEST_CELLS = {
    "speaker": st.sampled_from(["spk1", "spk2", "spk3"]), "group": st.sampled_from(["g1", "g2"]),
    "label": st.sampled_from(["angry", "happy"]), "gender": st.sampled_from(["male", "F", "other"]),
    "split": st.sampled_from(["train", "VAL", "dev", "test", "holdout"]), "fold": st.sampled_from(["1", "2", "0", "²"]),
    "audio": st.sampled_from(["a.wav", "b.wav", "sub/a.wav", "missing.wav", "/abs/none.wav"]),
    "video": st.sampled_from(["a.mp4", "", "missing.mp4"]), "audio_features": st.sampled_from(["f.npy", "none.npy"]),
    "visual_features": st.sampled_from(["f.npy", ""]), "id": st.sampled_from(["s1", "s2", "s3", "s1"]),
}


@fuzz(300)
@given(content=st.one_of(st.binary(max_size=300), table(["speaker", "label", "audio"], MANIFEST_COLUMNS, MANIFEST_CELLS).map(csv_text)),
       suffix=st.sampled_from([".csv", ".tsv"]),
       file_columns=st.sampled_from([[], ["audio"], ["audio", "video"], ["audio_features", "visual_features"]]),
       key_columns=st.sampled_from([[], ["notes"]]), training=st.booleans())
@example(content="speaker,label,audio,fold\ns1,a,a.wav,²\ns2,a,b.wav,1\n", suffix=".csv", file_columns=["audio"],
         key_columns=[], training=True)  # ValueError: int('²'), a fold that isdigit()
@example(content="speaker,label,audio\ns1,a,~nosuchuser/a.wav\n", suffix=".csv", file_columns=["audio"], key_columns=[],
         training=False)  # RuntimeError: Could not determine home directory
@example(content=f"speaker,label,audio\ns1,a,{'x' * 300}\n", suffix=".csv", file_columns=["audio"], key_columns=[],
         training=False)  # OSError: File name too long
@pytest.mark.slow
def test_manifests(content, suffix, file_columns, key_columns, training):
    """A manifest CSV of any bytes, or a near-valid one with cells replaced: a Manifest whose rows each name their
    problems, or a DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "sub").mkdir()
        for name in ("a.wav", "b.wav", "sub/a.wav", "a.mp4", "f.npy"):
            written(tmp, name, b"")
        manifest = outcome(read_manifest, written(tmp, "m" + suffix, content), file_columns, key_columns, training)
        if manifest is not None:
            for sample in manifest.rows["id"]:
                assert manifest.describe(sample)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@st.composite
def npy_files(draw) -> bytes:
    """A .npy file of any dtype and shape (NaN, infinity and huge values included), now and then with a byte of its
    header changed or cut short; or any bytes."""
    if draw(st.integers(0, 4)) == 4:
        return draw(st.binary(max_size=100))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.bool_, np.complex64, "U2", "f2",
                                  [("a", "f4"), ("b", "i2")]]))
    data = bytearray(npy(draw(arrays(np.dtype(dtype), array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))))
    if draw(st.booleans()):
        at = draw(st.integers(0, 80))
        data[at:at + 1] = draw(st.binary(min_size=1, max_size=1))
    if draw(st.integers(0, 4)) == 4:
        del data[draw(st.integers(1, len(data))):]
    return bytes(data)


@fuzz(200)
@given(contents=st.lists(npy_files(), min_size=1, max_size=3), expected_dim=st.sampled_from([None, 2]))
@example(contents=[b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': \x00), }" + b" " * 62 + b"\n"],
         expected_dim=None)  # tokenize.TokenError from numpy's header parser
@example(contents=[npy(np.array([1e300, 0.0]))], expected_dim=None)  # finite, but infinite as float32
@example(contents=[npy(np.array([1 + 2j, 0j]))], expected_dim=None)  # complex: was loaded with its imaginary part dropped
@example(contents=[npy(np.array([np.inf, 0], np.float16))], expected_dim=None)  # float16 infinity, past the float32 range check
def test_feature_npy_files(contents, expected_dim):
    """A manifest's precomputed .npy features (audio_features, visual_features) of any dtype, shape and bytes: each
    sample gets finite float32 (D,) or (T, D) features or a problem naming its file."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {f"s{i}": written(tmp, f"s{i}.npy", content) for i, content in enumerate(contents)}
        problems: dict[str, list[str]] = {sample: [] for sample in files}
        loaded = FeatureFiles(files, "column 'audio_features'", expected_dim).load(cache=None, workers=1, progress=False,
                                                                                   problems=problems)
        for sample in files:
            assert (sample in loaded.values) != bool(problems[sample])
        for value in loaded.values.values():
            assert value.dtype == np.float32 and value.ndim in (1, 2) and np.isfinite(value).all()


# ---- OpenFace CSVs ---------------------------------------------------------------------------------

NUMBERS = st.one_of(st.floats().map(str), st.integers(-5, 5).map(str), ODD_CELLS)
STEMS = ["01-01-01-01-01-01-01", "01-01-02-01-01-01-01", "s3"]
AU_CELLS = {"video_stem": st.sampled_from(STEMS), "AU01_r": NUMBERS, "AU12_c": NUMBERS, "AU04_r": NUMBERS,
            "success": st.sampled_from(["1", "0", "1.0", "yes"]), "confidence": st.sampled_from(["0.9", "0.5", "1", "high"]),
            "frame": st.sampled_from(["1", "2"])}


@fuzz(200)
@given(content=st.one_of(st.binary(max_size=200),
                         table(["video_stem", "AU01_r", "AU12_c"], ["AU04_r", " AU05_r", "actor", "AU1_r"], AU_CELLS).map(csv_text)))
@example(content=b"")  # EmptyDataError
@example(content="video_stem,AU01_r\ns3,abc\n")  # ValueError: could not convert string to float
@example(content="video_stem,AU01_r\ns3,3.4028235677973366e+38\n")  # finite, but infinite as float32
def test_openface_clip_tables(content):
    """A clip-level AU table of any bytes, or near-valid with cells replaced: its clips' vectors or DataErrors."""
    with tempfile.TemporaryDirectory() as tmp:
        source = outcome(VisualSource, "table", written(tmp, "au.csv", content))
        for stem in STEMS if source is not None else ():
            vector = outcome(source.vector, stem) if source.has(stem) else None
            assert vector is None or (np.isfinite(vector).all() and len(vector) == len(source.feature_names))


@fuzz(200)
@given(content=st.one_of(st.binary(max_size=200),
                         table(["frame", "success", "confidence", "AU01_r", "AU12_c"], ["AU04_r", " timestamp"], AU_CELLS)
                         .map(csv_text)),
       min_confidence=st.sampled_from([0.0, 0.8]))
@example(content="frame,confidence,AU01_r\n1,high,0.0\n", min_confidence=0.8)  # TypeError: '>=' str and float
@example(content="frame,success,AU01_r\n1,1,abc\n", min_confidence=0.8)  # ValueError: could not convert string to float
@example(content="frame,AU01_r\n1,3.4028235677973366e+38\n", min_confidence=0.8)  # finite, but infinite as float32
def test_openface_frame_csvs(content, min_confidence):
    """OpenFace's per-frame CSV of any bytes, or near-valid with cells replaced: a finite clip vector or a DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        found = outcome(clip_vector_from_frames, written(tmp, "clip.csv", content), min_confidence)
        if found is not None:
            vector, names, stats = found
            assert np.isfinite(vector).all() and len(vector) == len(names) and stats["frames"] >= 1


# ---- `--set key=value` overrides and config files --------------------------------------------------

CONFIG = REPO / "configs" / "ravdess_mars.yaml"


@cache
def config_keys() -> list[str]:
    """Every dotted key of two full configs (an audio-visual RAVDESS one, a manifest one with video), sections too."""
    keys = []

    def walk(tree: dict, prefix: str) -> None:
        for key, value in tree.items():
            keys.append(prefix + key)
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")

    for config in (CONFIG, REPO / "configs" / "manifest_av.yaml"):
        walk(load_config(config).model_dump(mode="json"), "")
    return sorted(set(keys))


YAML_TREES = st.recursive(st.none() | st.booleans() | st.integers(-3, 300) | st.floats() | st.text(max_size=6),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                          max_leaves=6)
YAML_VALUES = st.one_of(
    st.text(max_size=20), YAML_TREES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()),
    st.sampled_from(["", "~", "null", "[", "{a: 1", "'", "\t1", "*x", "&a 1", "!!python/object:os.system", ".inf", ".nan",
                     "1e400", "2024-01-01", "on", "off", "- a", "a: b: c", "[1, 2]", "{name: mlp}", "\x00", "%"]))
KEYS = st.one_of(st.deferred(lambda: st.sampled_from(config_keys())).flatmap(
    lambda key: with_one_changed(key.split("."), st.text(max_size=6)).map(".".join)), st.text(max_size=10))


@pytest.mark.slow
@fuzz(300)
@given(overrides=st.lists(st.one_of(st.builds("{}={}".format, KEYS, YAML_VALUES), st.text(max_size=12)), max_size=3))
@example(overrides=["seed=["])  # yaml ParserError
def test_config_overrides(overrides):
    """`--set key=value` on a real config (parse_overrides, set_dotted, validation): a config or a ConfigError, whatever
    the keys and values."""
    outcome(load_config, CONFIG, overrides)


@st.composite
def config_files(draw) -> str:
    """A config that extends a real one and sets a few of its keys (some changed) to any YAML values."""
    tree: dict = {"extends": str(CONFIG)}
    for key, value in draw(st.lists(st.tuples(KEYS, YAML_TREES), max_size=4)):
        outcome(set_dotted, tree, key, value)
    return yaml.safe_dump(tree)


@pytest.mark.slow
@fuzz(200)
@given(content=st.one_of(st.binary(max_size=100), st.text(max_size=100), config_files()))
@example(content=b"\x80")  # UnicodeDecodeError
def test_config_files(content):
    """A config file of any bytes, or one extending a real config with changed values: a config or a ConfigError."""
    with tempfile.TemporaryDirectory() as tmp:
        outcome(load_config, written(tmp, "config.yaml", content))


# ---- speaker maps (`emofuse predict --speakers`), shard specs (`--shard i/n`), label maps (`--label-map`) ----

SPEAKER_FILES = st.sampled_from(["a.wav", "dir/a.wav", "b.wav", "c.mp4"])


@fuzz(200)
@given(content=st.one_of(st.binary(max_size=120),
                         table(["file", "speaker"], ["notes", "file", "Speaker"],
                               {"file": SPEAKER_FILES, "speaker": st.sampled_from(["s1", "s2"])}).map(csv_text)),
       files=st.lists(st.one_of(SPEAKER_FILES, st.text(max_size=8)), max_size=4))
@example(content=b"\x80", files=[])  # UnicodeDecodeError
@example(content="file,speaker\n" + "a" * 200_000 + ",s1\n", files=[])  # csv.Error: field larger than field limit
def test_speaker_maps(content, files):
    """A speaker map of any bytes, or near-valid with cells replaced, then looked up for some files: each file's
    speaker or a ConfigError."""
    with tempfile.TemporaryDirectory() as tmp:
        mapping = outcome(read_speaker_map, written(tmp, "speakers.csv", content))
        if mapping is not None:
            speakers = outcome(assign_speakers, files, mapping)
            assert speakers is None or len(speakers) == len(files)


@fuzz(300)
@given(text=st.one_of(st.text(max_size=12), st.from_regex(r"\s?[-+]?\d{1,3}\s?/\s?[-+]?\d{1,3}\s?", fullmatch=True),
                      st.sampled_from(["1/2", "0/3", "3/2", "1/0", "²/3", "٣/٤", "1/2/3", "1_0/20", "/", "9" * 5000 + "/1"])),
       key=st.text(st.characters(blacklist_categories=("Cs",)), max_size=10))
def test_shard_specs(text, key):
    """`--shard i/n`: a shard whose takes every i of n agree on (each key in exactly one), or a ConfigError."""
    shard = outcome(parse_shard, text)
    if shard is not None:
        index, count = shard
        assert 1 <= index <= count
        if count <= 100:
            assert sum(in_shard(key, i, count) for i in range(1, count + 1)) == 1


@fuzz(200)
@given(text=st.one_of(st.none(), st.text(max_size=20),
                      st.lists(st.one_of(st.sampled_from(["calm=neutral", "surprise=surprised", "a=b", "a=c", "=x", "x=",
                                                          "a=b=c", " ", ""]), st.text(max_size=6)), max_size=4)
                      .map(",".join)))
def test_label_maps(text):
    """`emofuse cross-corpus --label-map other=run,...`: a mapping of non-empty names or a ConfigError."""
    mapping = outcome(parse_label_map, text)
    assert mapping is None or all(k and v and k == k.strip() and v == v.strip() for k, v in mapping.items())


# ---- uploads to `emofuse serve`, and decoding media of any bytes ------------------------------------

@cache
def recordings() -> dict[str, bytes]:
    """Small valid recordings to change a few bytes of: a WAV, a FLAC, and an mp4 with video and audio."""
    wave = (0.3 * np.sin(np.arange(3200) / 8)).astype(np.float32)
    out = {}
    for suffix, kind in ((".wav", "WAV"), (".flac", "FLAC")):
        buffer = io.BytesIO()
        sf.write(buffer, wave, 16000, format=kind)
        out[suffix] = buffer.getvalue()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video, audio = container.add_stream("mpeg4", rate=10), container.add_stream("aac", rate=16000)
        video.width, video.height, video.pix_fmt, audio.layout = 32, 32, "yuv420p", "mono"
        for i in range(3):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")))
        frame = av.AudioFrame.from_ndarray(wave[None], format="flt", layout="mono")
        frame.sample_rate = 16000
        resampler = av.AudioResampler(format=audio.format.name, layout="mono", rate=16000)
        for resampled in resampler.resample(frame) + resampler.resample(None):
            container.mux(audio.encode(resampled))
        container.mux(video.encode(None) + audio.encode(None))
    out[".mp4"] = buffer.getvalue()
    return out


@st.composite
def changed_recordings(draw) -> tuple[str, str | bytes, list[tuple[int, bytes | None]]]:
    """(suffix, source, edits): a valid recording (``source`` is its suffix in recordings()) with up to three edits
    (bytes written at an offset, headers more often, or None: the end cut off there), sometimes under another suffix
    (which decides the decoder); or any bytes as ``source`` under any suffix. Kept small for @example."""
    if draw(st.integers(0, 3)) == 3:
        return draw(st.sampled_from([".wav", ".mp4", ".mp3", ".bin", ""])), draw(st.binary(max_size=200)), []
    source = draw(st.sampled_from([".wav", ".flac", ".mp4"]))
    edit = st.tuples(st.one_of(st.integers(0, 64), st.integers(0, 10_000)),
                     st.one_of(st.binary(min_size=1, max_size=8), st.binary(min_size=1, max_size=8), st.none()))
    return draw(st.sampled_from([source, source, ".wav", ".mp4", ".webm"])), source, draw(st.lists(edit, max_size=3))


def recording_bytes(recording: tuple[str, str | bytes, list[tuple[int, bytes | None]]]) -> bytes:
    """The bytes a changed_recordings() draw stands for."""
    _, source, edits = recording
    data = bytearray(recordings()[source] if isinstance(source, str) else source)
    for at, new in edits:
        at %= max(len(data), 1)
        if new is None:
            del data[at:]
        else:
            data[at:at + len(new)] = new
    return bytes(data)


@fuzz(150)
@given(recording=changed_recordings())
@example(recording=(".mp4", ".mp4", [(8, b"\x80")]))  # UnicodeDecodeError from PyAV: the mp4's brand is not UTF-8
@example(recording=(".mp4", ".mp4", [(2832, None)]))  # AttributeError: cut in the audio track's header: no codec context
@example(recording=(".flac", ".flac", [(15, b"\x0c\x15\xfb\xd0]\x00v\xe3")]))  # MemoryError: STREAMINFO announces 3e10 samples
def test_media_decoding(recording):
    """check_media, probe, load_audio, decode_audio and decode_video on changed recordings and any bytes: a result or a
    DataError naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = written(tmp, "clip" + recording[0], recording_bytes(recording))
        outcome(check_media, path, 16000)
        outcome(probe, path)
        for wave in (outcome(load_audio, path, 16000), outcome(decode_audio, path, 8000)):
            assert wave is None or (wave.ndim == 1 and np.isfinite(wave).all())
        video = outcome(decode_video, path, fps=10.0, max_frames=4)
        assert video is None or len(video.frames) == len(video.timestamps) > 0


class Request:
    """What receive_upload reads of a Starlette request: headers (latin-1 text, as Starlette decodes them) and the
    body in chunks."""

    def __init__(self, headers: dict[str, str], body: bytes, chunk: int):
        self.headers, self.body, self.chunk = headers, body, chunk

    def __repr__(self) -> str:
        return f"Request({self.headers!r}, {self.body!r}, {self.chunk!r})"

    async def stream(self):
        for start in range(0, len(self.body), self.chunk):
            yield self.body[start:start + self.chunk]


LATIN1 = st.text(st.characters(max_codepoint=255), max_size=24)
ODD_UPLOAD_NAMES = st.one_of(st.sampled_from(["../x.wav", "a/b.wav", "", ".", "é.wav", "x" * 300, 'a"b.wav', "a\r\nb.wav",
                                              "clip.WAV", "c.wav\x00.mp4", "noext"]), st.text(max_size=16))
ODD_CONTENT_TYPES = st.one_of(st.sampled_from(["text/plain", "", "AUDIO/X", "audio/wav; charset=\x00"]), LATIN1)
UPLOAD_FAULTS = ["none", "none", "none", "name", "type", "field", "second part", "header", "length", "byte", "any bytes",
                 "limit"]


@st.composite
def upload_requests(draw) -> tuple[Request, int]:
    """(request, size limit): a multipart upload of a changed recording with at most one more fault: a fuzzed file
    name, content type, field name, request header or body byte, a second part, any bytes as the body, a low limit."""
    fault = draw(st.sampled_from(UPLOAD_FAULTS))
    boundary = draw(st.sampled_from(["b0undary", "----WebKitFormBoundary7MA4YWxkTrZu0gW"]))
    recording = draw(changed_recordings())
    suffix = recording[0]
    field = draw(st.sampled_from(["note", "", "File"])) if fault == "field" else "file"
    name = draw(ODD_UPLOAD_NAMES) if fault == "name" else "clip" + suffix
    kind = draw(ODD_CONTENT_TYPES) if fault == "type" else "video/mp4" if suffix == ".mp4" else "audio/wav"
    parts = [(field, name, kind, recording_bytes(recording))]
    if fault == "second part":
        parts.append((draw(st.sampled_from(["file", "note"])), "b.wav", "audio/wav", recording_bytes(draw(changed_recordings()))))
    body = bytearray(b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{f}"; filename="{n}"\r\nContent-Type: {k}\r\n\r\n'.encode()
        + content + b"\r\n" for f, n, k, content in parts) + f"--{boundary}--\r\n".encode())
    if fault == "byte":
        at = draw(st.integers(0, len(body) - 1))
        body[at:at + 1] = draw(st.binary(max_size=2))
    if fault == "any bytes":
        body = bytearray(draw(st.binary(max_size=200)))
    headers = {"content-type": draw(LATIN1) if fault == "header" else f"multipart/form-data; boundary={boundary}"}
    if fault == "length":
        headers["content-length"] = draw(st.sampled_from(["abc", "99999999999", "-1", "١٢", "", str(len(body))]))
    return Request(headers, bytes(body), draw(st.integers(1, 4096))), 200 if fault == "limit" else 1 << 20


@fuzz(200)
@given(upload=upload_requests(), sample_rate=st.sampled_from([16000, None]))
def test_uploads(upload, sample_rate):
    """`emofuse serve` receiving and checking an upload of any name, type and bytes: an Upload whose recording is
    whole, or a 4xx RequestError with a message."""
    request, max_bytes = upload
    with tempfile.TemporaryDirectory() as tmp:
        try:
            inspect_media(asyncio.run(receive_upload(request, Path(tmp), max_bytes)), sample_rate)
        except RequestError as err:
            assert 400 <= err.status < 500 and err.message
