"""The Python front door: docs/api.md's examples run as written; load_run(...).predict equals `emofuse predict
--json` to 1e-6, and a waveform is predicted as its file is."""

import json
import re

import numpy as np
import pytest
import soundfile as sf

import emofuse
from conftest import REPO
from emofuse.cli import main
from emofuse.core.registry import ConfigError

CLIP = REPO / "src" / "emofuse" / "sample" / "ravdess" / "audio16k" / "Actor_01" / "03-01-05-02-01-01-01.flac"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(examples())))
def test_the_examples_in_docs_api_run(index, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    exec(compile(examples()[index], f"docs/api.md example {index + 1}", "exec"), {})
    assert capsys.readouterr().out.strip()


def test_load_run_predict_equals_the_command_line_json(capsys):
    model = emofuse.load_model()
    typed = model.predict([CLIP])[0]
    assert main(["predict", str(model.run_dir), str(CLIP), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert typed.pred == entry["pred"] and typed.modalities == entry["modalities"] and typed.missing == entry["missing"]
    for c in model.classes:
        assert abs(typed.probs[c] - entry["probs"][c]) <= 1e-6
        assert abs(typed.modality_probs["audio"][c] - entry["modality_probs"]["audio"][c]) <= 1e-6
    assert any(p != round(p, 6) for p in typed.probs.values())  # full precision, not the CLI's rounding


def test_a_waveform_is_predicted_as_its_file_and_bad_inputs_say_why(tmp_path):
    model = emofuse.load_model()
    wave, rate = sf.read(CLIP, dtype="float32")
    assert rate == model.sample_rate
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    from_file, from_array, bad = model.predict([CLIP, wave, empty])
    assert from_array.source == "array[1]" and from_array.pred == from_file.pred
    np.testing.assert_allclose([from_array.probs[c] for c in model.classes], [from_file.probs[c] for c in model.classes],
                               atol=1e-6)
    assert bad.pred is None and "empty" in bad.error and bad.probs == {}


def test_the_cli_registry_is_list_parts(capsys):
    assert main(["registry"]) == 0
    printed = capsys.readouterr().out
    for kind, names in emofuse.list_parts().items():
        assert f"{kind}: {', '.join(names)}" in printed
    assert "load_run" in emofuse.__all__


def test_one_input_gives_one_prediction_and_a_string_is_one_path():
    """Before: predict("clip.wav") iterated over the string's characters and answered "file does not exist" 54 times."""
    model = emofuse.load_model()
    (listed,) = model.predict([CLIP])
    alone = model.predict(str(CLIP))
    assert isinstance(alone, emofuse.Prediction) and alone.source == listed.source and alone.probs == listed.probs
    assert model.predict(CLIP).probs == listed.probs  # a Path


def test_a_waveform_at_another_rate_comes_with_its_rate():
    """A (waveform, sample_rate) pair is resampled to the model's rate; stereo is mixed down."""
    from emofuse.data.media import resample

    model = emofuse.load_model()
    wave, rate = sf.read(CLIP, dtype="float32")
    at_48k = resample(wave, rate, 48000)
    direct = model.predict(wave)
    paired = model.predict((at_48k, 48000))
    assert paired.pred == direct.pred
    np.testing.assert_allclose([paired.probs[c] for c in model.classes], [direct.probs[c] for c in model.classes], atol=0.02)
    stereo = model.predict([(np.stack([wave, wave], axis=1), rate)])[0]
    np.testing.assert_allclose([stereo.probs[c] for c in model.classes], [direct.probs[c] for c in model.classes], atol=1e-6)
    with pytest.raises(ConfigError, match="sample rate"):
        model.predict([(wave, "16k")])
