"""The command line's shape: every command declared once and listed by group in `emofuse --help`, the fixture makers
under `emofuse fixtures`, logging on stderr (stdout is the result: the --json commands print JSON only), and the
shipped configs (`emofuse configs`, a CONFIG given by name)."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from emofuse.cli import build_parser, main
from emofuse.cli.commands import COMMANDS, GROUPS, command
from emofuse.config.recipes import recipes

CLIP = REPO / "src" / "emofuse" / "sample" / "ravdess" / "audio16k" / "Actor_01" / "03-01-05-02-01-01-01.flac"

# Each command with a --json option, run small; `--speaker me` on one file makes predict log a warning.
JSON_RUNS = {
    "predict": ["predict", "--json", "--speaker", "me", str(CLIP)],
    "cost": ["cost", "--json", "--setting", "ravdess", "--repeats", "1", "--warmup", "0", "--device", "cpu"],
}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in name.split():
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    return parser


def test_every_command_with_json_output_is_run_below():
    with_json = {name for name in COMMANDS if any("--json" in a.option_strings for a in subparser(name)._actions)}
    assert with_json == set(JSON_RUNS)


@pytest.mark.parametrize("name", sorted(JSON_RUNS))
def test_json_commands_print_only_json_on_stdout(name, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "emofuse", "-v", *JSON_RUNS[name]], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    if name == "predict":
        assert "speaker me: 1 file" in done.stderr  # the warning went to stderr, not into the JSON


def test_help_lists_every_command_once_under_its_group(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listing = out[out.index(f"{GROUPS['run']}:"):]
    titles = [line[:-1] for line in listing.splitlines() if line and not line.startswith(" ")]
    assert titles == list(GROUPS.values())
    listed = [line.split()[0] for line in listing.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    top = list(dict.fromkeys(name.split()[0] for name in COMMANDS))
    assert sorted(listed) == sorted(top)
    assert "make-touch-fixture" not in out and "make-emi-fixture" not in out


def test_a_command_is_declared_once():
    with pytest.raises(ValueError, match="'cv' is declared twice"):
        command("cv", "run", lambda p: None, help="again")(lambda args: 0)
    with pytest.raises(ValueError, match="unknown group 'runs'"):
        command("new", "runs", lambda p: None, help="new")


@pytest.mark.parametrize("argv", [["fixtures", "touch"], ["make-touch-fixture"]])
def test_fixture_makers_under_fixtures_and_their_old_names(argv, tmp_path):
    assert main([*argv, str(tmp_path / "touch"), "--speakers", "2", "--per-gesture", "1"]) == 0
    assert (tmp_path / "touch" / "manifest.csv").is_file()


def test_emi_fixture_under_fixtures(tmp_path):
    assert main(["fixtures", "emi", str(tmp_path / "emi"), "--n-train", "4", "--n-val", "2", "--n-test", "2"]) == 0
    assert (tmp_path / "emi" / "labels.csv").is_file()


def test_configs_lists_the_shipped_configs_with_their_purpose(capsys):
    assert main(["configs"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    shipped = sorted(p.relative_to(REPO / "configs").with_suffix("").as_posix() for p in (REPO / "configs").rglob("*.yaml"))
    assert sorted(lines) == shipped
    assert lines["ravdess_concat"].startswith("Feature fusion: the two encoders' vectors concatenated")
    assert all(r.purpose for r in recipes())


@pytest.mark.parametrize("given, found", [
    ("ravdess_mars", "ravdess_mars.yaml"), ("ravdess_mars.yaml", "ravdess_mars.yaml"),
    ("emi_ablation/1_average", "emi_ablation/1_average.yaml"),
])
def test_a_config_is_found_by_its_name(given, found, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not beside configs/: the shipped one answers
    assert build_parser().parse_args(["cv", given, "--out", "o"]).config == REPO / "configs" / found


def test_a_config_path_still_wins(tmp_path, monkeypatch):
    (tmp_path / "ravdess_mars.yaml").write_text("name: mine\n")
    monkeypatch.chdir(tmp_path)
    assert build_parser().parse_args(["cv", "ravdess_mars.yaml", "--out", "o"]).config.resolve() == \
        tmp_path / "ravdess_mars.yaml"
    assert build_parser().parse_args(["cv", "sub/none.yaml", "--out", "o"]).config.as_posix() == "sub/none.yaml"


def test_an_unknown_config_name_gets_a_suggestion(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["cv", "ravdes_mars", "--out", "o"])
    assert "'ravdes_mars' is neither a file nor a shipped config (did you mean 'ravdess_mars'?)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_non_editable_install_ships_the_configs(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(REPO)], check=True, capture_output=True, timeout=600)
    assert (target / "emofuse" / "configs" / "ravdess_mars.yaml").is_file()
    assert (target / "emofuse" / "configs" / "emi_ablation" / "1_average.yaml").is_file()
    code = ("from emofuse.config.recipes import resolve_config; from emofuse.config.loading import read_config_tree; "
            "path = resolve_config('ravdess_mars'); print(path, sorted(read_config_tree(path)['features']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(target)}, check=True)
    path, features = done.stdout.split(" ", 1)
    assert path == str(target / "emofuse" / "configs" / "ravdess_mars.yaml")
    assert "audio" in features  # from ravdess_ce.yaml, which it extends
