"""Long recordings cut by speech (issue 32 items 1, 4, 5): the segmenter on recordings built from real RAVDESS takes
joined with pauses, "no speech" answers, every timeline format parsed back, block decoding, and flat memory."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from emofuse import zoo
from emofuse.api import load_model
from emofuse.cli import main
from emofuse.core.registry import ConfigError
from emofuse.data.audio import load_audio
from emofuse.data.audio_stream import array_blocks, audio_blocks, duration_s
from emofuse.inference.predict import Predictor
from emofuse.inference.segments import SegmentSettings, cut, plan, segment_recording
from emofuse.inference.speech import NO_SPEECH, why_no_speech
from emofuse.inference.stream import audio_chunks
from emofuse.inference.timeline_formats import format_of, render, write_timeline

from conftest import RAVDESS, SHARED_DATA, requires_shared_data

RATE = 16000
PAUSE_S = 1.5
pytestmark = requires_shared_data()


def takes(actor: int = 2, every: int = 6) -> list:
    return sorted((RAVDESS / "audio16k" / f"Actor_{actor:02d}").glob("*.flac"))[::every]


def join(files, pause_s: float = PAUSE_S) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The takes end to end with ``pause_s`` of digital silence between them, and where each take lies (s)."""
    parts, spans, at = [], [], 0
    for f in files:
        wave = load_audio(f, RATE)
        spans.append((at / RATE, (at + len(wave)) / RATE))
        parts += [wave, np.zeros(round(pause_s * RATE), np.float32)]
        at += len(wave) + round(pause_s * RATE)
    return np.concatenate(parts), spans


@pytest.fixture(scope="module")
def predictor():
    return Predictor(zoo.model_dir(), speech_gate=True)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Ten takes of one actor (every emotion) joined with pauses, as a FLAC file."""
    files = takes()
    wave, spans = join(files)
    path = tmp_path_factory.mktemp("segments") / "joined.flac"
    sf.write(path, wave, RATE)
    return path, files, spans


@pytest.fixture(scope="module")
def segmented(predictor, recording):
    path = recording[0]
    return segment_recording(predictor, lambda rate: audio_blocks(path, rate), str(path))


def test_each_take_comes_back_as_one_segment_predicted_as_the_take_alone(predictor, recording, segmented):
    path, files, spans = recording
    segments = segmented["segments"]
    assert len(segments) == len(files)
    for s, (start, end) in zip(segments, spans):
        assert start <= s["start"] < s["end"] <= end and s["end"] - s["start"] >= 1.0
    alone = predictor.predict(files)
    agree = sum(s["pred"] == e["pred"] for s, e in zip(segments, alone))
    assert agree >= len(files) - 1  # the segment is the take less its silences: the same answer, bar a close call
    assert segmented["duration_s"] == pytest.approx(len(join(files)[0]) / RATE, abs=1e-3)
    assert segmented["summary"] and sum(segmented["summary"].values()) == pytest.approx(1, abs=1e-3)
    assert segmented["pred"] == next(iter(segmented["summary"]))
    assert segmented["speech_s"] == pytest.approx(sum(s["end"] - s["start"] for s in segments), abs=1e-2)


def test_plan_joins_short_pieces_widens_lone_ones_and_keeps_lengths():
    settings, s = SegmentSettings(min_s=1.0, max_s=4.0, join_gap_s=0.5), RATE
    # a 0.4 s piece 0.2 s after a 2 s region joins it; a lone 0.5 s piece 3 s later is widened to 1 s around its centre
    regions = [(0, 2 * s), (int(2.2 * s), int(2.6 * s)), (int(5.6 * s), int(6.1 * s))]
    assert plan(regions, 10 * s, s, settings) == [(0, int(2.6 * s)), (int(5.35 * s), int(6.35 * s))]
    # two pieces that would exceed max_s together stay apart; a short piece at the very end widens backwards
    regions = [(0, int(3.8 * s)), (int(4.0 * s), int(4.5 * s))]
    assert plan(regions, int(4.6 * s), s, settings) == [(0, int(3.8 * s)), (int(3.8 * s), int(4.6 * s))]
    with pytest.raises(ConfigError, match="min"):
        SegmentSettings(min_s=5, max_s=2)


def test_cut_gives_each_segment_whatever_the_block_size():
    wave = np.arange(50000, dtype=np.float32)
    segments = [(10, 3000), (2900, 20000), (40000, 50000)]
    for block_s in (0.01, 0.3, 10.0):
        pieces = list(cut(array_blocks(wave, RATE, block_s), segments))
        assert [p.tolist() for p in pieces] == [wave[a:b].tolist() for a, b in segments]


def test_blocks_decode_the_signal_load_audio_gives(tmp_path):
    flac = takes()[0]
    blocks = list(audio_blocks(flac, RATE, block_s=0.5))
    assert len(blocks) > 4 and np.array_equal(np.concatenate(blocks), load_audio(flac, RATE))
    # 16 kHz -> 8 kHz as one soxr stream; an mp3 through PyAV frame by frame
    for path, rate in ((flac, 8000), (SHARED_DATA / "crema-d" / "1002_DFA_ANG_XX.mp3", RATE)):
        streamed, whole = np.concatenate(list(audio_blocks(path, rate))), load_audio(path, rate)
        assert abs(len(streamed) - len(whole)) <= 2
        n = min(len(streamed), len(whole))
        assert np.abs(streamed[:n] - whole[:n]).max() < 1e-3
    assert duration_s(flac) == pytest.approx(len(load_audio(flac, RATE)) / RATE)


def test_silence_and_a_blip_get_no_speech_and_no_class(predictor, tmp_path):
    silence, blip = tmp_path / "silence.wav", tmp_path / "blip.wav"
    sf.write(silence, np.zeros(2 * RATE, np.float32), RATE)
    sf.write(blip, (0.1 * np.random.default_rng(0).standard_normal(RATE // 10)).astype(np.float32), RATE)
    quiet, short, take = predictor.predict([silence, blip, takes()[0]])
    for entry in (quiet, short):
        assert entry["pred"] is None and entry["probs"] is None and "error" not in entry
        assert entry["missing"] == {"audio": entry["no_speech"]}
    assert quiet["no_speech"].startswith("no speech") and short["no_speech"].startswith("too short: 0.10 s")
    assert take["pred"] is not None and "no_speech" not in take
    for path, start in ((silence, "no speech"), (blip, "too short")):
        r = segment_recording(predictor, lambda rate, p=path: audio_blocks(p, rate), str(path))
        assert r["pred"] is None and r["label"] == NO_SPEECH and r["summary"] == {} and r["no_speech"].startswith(start)
        assert r["segments"] == [{"start": 0.0, "end": r["duration_s"], "label": NO_SPEECH, "pred": None, "probs": None}]
    assert why_no_speech(np.zeros(48000, np.float32), 48000).startswith("no speech")  # any rate
    model = load_model()
    model.predictor.speech_gate = True
    answer = model.predict(silence)
    assert answer.pred is None and answer.no_speech.startswith("no speech") and answer.error is None


def test_stream_windows_without_speech_have_no_class(predictor):
    wave = np.concatenate([np.zeros(4 * RATE, np.float32), load_audio(takes()[0], RATE)])
    windows = list(predictor.stream(audio_chunks(wave, RATE, 0.5), window_s=3.0, hop_s=1.0))
    first, last = windows[0], windows[-1]
    assert first.pred is None and first.probs is None and first.no_speech.startswith("no speech")
    assert last.pred in predictor.class_names and last.no_speech is None


CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d)([.,])(\d{3}) --> (\d\d):(\d\d):(\d\d)[.,](\d{3})\n([^\n]+)\n")


def parse_cues(text: str, decimal: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue of a WebVTT (after its header) or SRT file; fails on anything else."""
    blocks = [b + "\n" for b in text.strip("\n").split("\n\n")]
    cues = []
    for i, block in enumerate(blocks, 1):
        m = CUE.fullmatch(block)
        assert m and int(m[1]) == i and m[5] == decimal, block
        h, mi, s, ms, h2, mi2, s2, ms2 = (int(m[k]) for k in (2, 3, 4, 6, 7, 8, 9, 10))
        cues.append((3600 * h + 60 * mi + s + ms / 1000, 3600 * h2 + 60 * mi2 + s2 + ms2 / 1000, m[11]))
    return cues


def test_every_timeline_format_parses_back(segmented, tmp_path):
    segments = segmented["segments"]
    rows = list(csv.DictReader(io.StringIO(render([segmented], "csv"))))
    assert [(float(r["start"]), float(r["end"]), r["label"]) for r in rows] == \
        [(s["start"], s["end"], s["label"]) for s in segments]
    assert all(float(r["score"]) == s["probs"][s["pred"]] and float(r[s["pred"]]) == float(r["score"])
               for r, s in zip(rows, segments))
    assert json.loads(render([segmented], "json")) == [segmented]
    vtt = render([segmented], "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    for text, decimal in ((vtt[len("WEBVTT\n\n"):], "."), (render([segmented], "srt"), ",")):
        cues = parse_cues(text, decimal)
        assert [(a, b) for a, b, _ in cues] == [(s["start"], s["end"]) for s in segments]
        assert [c.split()[0] for _, _, c in cues] == [s["pred"] for s in segments]
    for name in ("t.csv", "t.json", "t.vtt", "t.srt"):
        assert write_timeline(tmp_path / name, [segmented]) == name[2:] and (tmp_path / name).stat().st_size
    with pytest.raises(ConfigError, match="suffix"):
        format_of(tmp_path / "t.txt")
    with pytest.raises(ConfigError, match="one recording"):
        render([segmented, segmented], "srt")
    silent = {"file": "s.wav", "segments": [{"start": 0.0, "end": 2.0, "label": NO_SPEECH, "pred": None, "probs": None}]}
    assert parse_cues(render([silent], "srt"), ",") == [(0.0, 2.0, NO_SPEECH)]
    assert list(csv.DictReader(io.StringIO(render([silent], "csv"))))[0]["label"] == NO_SPEECH


@pytest.mark.slow
def test_cli_segments_a_long_recording_by_itself_and_writes_captions(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOFUSE_SPEECH_GATE", "1")
    wave, spans = join(takes(every=3), pause_s=1.0)  # 20 takes: over a minute
    path = tmp_path / "call.flac"
    sf.write(path, wave, RATE)
    assert main(["predict", str(path), "--segments-out", str(tmp_path / "call.srt")]) == 0
    out, err = capsys.readouterr()
    assert "predicted per speech segment (--segments)" in err and f"in {len(spans)} segments" in out
    cues = parse_cues((tmp_path / "call.srt").read_text(), ",")
    assert len(cues) == len(spans) and all(a <= c[0] < c[1] <= b for c, (a, b) in zip(cues, spans))
    assert main(["predict", str(path), "--segments", "--json", "--enrol-self"]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert len(r["segments"]) == len(spans) and r["speaker_stats"] == f"enrolled from {len(spans)} of its {len(spans)} segments"


@pytest.mark.slow
def test_api_segments_a_waveform_at_its_own_rate(recording):
    import librosa

    path, files, spans = recording
    wave = load_audio(path, RATE)
    model = load_model()
    r = model.segments((librosa.resample(wave, orig_sr=RATE, target_sr=44100), 44100))
    assert len(r["segments"]) == len(files)
    assert all(a - 0.05 <= s["start"] < s["end"] <= b + 0.05 for s, (a, b) in zip(r["segments"], spans))


MEMORY_PROBE = """
import sys, tracemalloc
import numpy as np, soundfile as sf
from emofuse import zoo
from emofuse.data.audio_stream import audio_blocks
from emofuse.inference.predict import Predictor
from emofuse.inference.segments import segment_recording
path = sys.argv[1]
predictor = Predictor(zoo.model_dir(), speech_gate=True)
tracemalloc.start()
r = segment_recording(predictor, lambda rate: audio_blocks(path, rate), path)
print(len(r["segments"]), r["duration_s"], tracemalloc.get_traced_memory()[1])
"""


@pytest.mark.slow
def test_a_twenty_minute_recording_is_segmented_in_flat_memory(tmp_path):
    """20 minutes (77 MB as float32 samples) with a take every minute; the segmenter's own allocations (numpy's
    included, tracemalloc) peak far below the decoded recording."""
    take = load_audio(takes()[0], RATE)
    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        for _ in range(20):
            minute = np.zeros(60 * RATE, np.float32)
            minute[RATE:RATE + len(take)] = take
            f.write(minute)
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    segments, duration, peak = out.stdout.split()
    assert int(segments) == 20 and float(duration) == pytest.approx(1200, abs=0.01)
    assert int(peak) < 20e6, f"peak {int(peak) / 1e6:.1f} MB traced"
