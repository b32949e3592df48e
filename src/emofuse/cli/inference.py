"""Commands that use a finished run: predict (files or live input), the bundled models, export, cost, serve.

Each command imports what it needs when it runs, so that `emofuse --help` and argument errors stay quick."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from emofuse.cli.commands import command
from emofuse.cli.common import _at_least_one, _port, _positive, _at_least_zero, _config
from emofuse.core.registry import ConfigError
from emofuse.inference.formats import FORMATS


def parser_predict(pr) -> None:
    pr.add_argument("paths", type=Path, nargs="*", metavar="[RUN_DIR] INPUT",
                    help="a run directory written by `emofuse cv` or `emofuse fit` (default: the bundled model, "
                         "see `emofuse models`), then media files, folders (searched recursively), quoted glob "
                         "patterns ('calls/**/*.wav') or Kaldi wav.scp files")
    pr.add_argument("--model", default=None, metavar="NAME", help="a bundled model instead of a run directory")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table (--format json)")
    pr.add_argument("--format", choices=FORMATS, default=None,
                    help="table (the default on the console), json (a list), jsonl (one object a line) or csv; "
                         "with --out, the default is the one the file's suffix names")
    pr.add_argument("--top-k", type=_at_least_one, default=None, metavar="K",
                    help="each result also lists its K most probable classes, highest first, as [{label, score}] "
                         "(Hugging Face's audio-classification pipeline's format; json, jsonl, csv)")
    pr.add_argument("--out", type=Path, default=None, metavar="FILE",
                    help="write the results to FILE (.jsonl, .csv: line by line as they are made; .json: at the end); "
                         "a rerun skips the recordings FILE already holds and predicts the rest")
    pr.add_argument("--list", dest="lists", type=Path, action="append", default=[], metavar="FILE",
                    help="also predict the files FILE names: one path a line, or a Kaldi wav.scp ('<utterance-id> "
                         "<path>' a line, the id naming the result); repeatable")
    pr.add_argument("--chunk", type=_at_least_one, default=None, metavar="N",
                    help="recordings decoded, predicted and written together (default 32): memory holds two chunks' "
                         "features, whatever the number of recordings")
    pr.add_argument("--workers", type=_at_least_one, default=None, metavar="N",
                    help="processes that decode and extract features while this one predicts (default: the run's "
                         "features.workers, at most one per core and one per 64 recordings; 1: all in this process)")
    pr.add_argument("--openface", type=Path, default=None, metavar="DIR",
                    help="OpenFace per-frame CSVs named <file stem>.csv, for the visual branch")
    pr.add_argument("--fold", type=int, default=None, help="use this fold's model only (default: all folds, averaged)")
    pr.add_argument("--classes", type=_names, default=None, metavar="A,B,...",
                    help="answer among these of the model's classes only, their probabilities renormalised to sum to 1 "
                         "(e.g. angry,happy,neutral,sad; default: all)")
    pr.add_argument("--min-confidence", type=float, default=None, metavar="P",
                    help="flag an answer whose top probability is below P as uncertain (default: the bundled model "
                         "card's level, if it states one; 0: no flag)")
    speakers = pr.add_mutually_exclusive_group()
    speakers.add_argument("--speaker", default=None, metavar="NAME",
                          help="runs with features.speaker_norm: all FILEs are one speaker, normalised with their joint "
                               "statistics (default: each file on its own, with a typical training speaker's)")
    speakers.add_argument("--speakers", type=Path, default=None, metavar="CSV",
                          help="like --speaker, with a CSV (columns file, speaker) naming each FILE's speaker")
    pr.add_argument("--stream", type=Path, default=None, metavar="FILE",
                    help="play FILE's audio as live input: every --hop seconds, one line with the prediction of the last "
                         "--window seconds and its latency (--json: one object per line)")
    pr.add_argument("--window", type=_positive, default=3.0, metavar="SECONDS", help="--stream: window length (default 3)")
    pr.add_argument("--hop", type=_positive, default=1.0, metavar="SECONDS", help="--stream: seconds between windows (default 1)")
    pr.add_argument("--chunk-ms", type=_positive, default=100.0, metavar="MS",
                    help="--stream: the audio arrives in chunks this long (default 100)")
    pr.add_argument("--fast", action="store_true",
                    help="--stream: feed the chunks as fast as they are taken, not at the pace of the wall clock")
    add_segment_arguments(pr)
    pr.set_defaults(overrides=[])


def add_segment_arguments(pr) -> None:
    """``predict --segments``: long recordings cut by speech, one prediction per segment."""
    from emofuse.inference.segments import AUTO_SEGMENT_S
    from emofuse.inference.timeline_formats import FORMATS

    pr.add_argument("--segments", action="store_true",
                    help="cut each recording at its pauses (voice-activity detection) and predict each utterance, "
                         f"with its start and end, and a summary (automatic for a recording over {AUTO_SEGMENT_S:g} s)")
    pr.add_argument("--segments-out", type=Path, default=None, metavar="FILE",
                    help="--segments: also write the timeline to FILE, in the format its suffix names (.csv, .json, "
                         ".vtt and .srt: emotion captions for a video player)")
    pr.add_argument("--timeline-format", choices=FORMATS, default=None,
                    help="--segments-out's format when FILE's suffix does not name one")
    pr.add_argument("--min-segment", type=_positive, default=1.0, metavar="SECONDS",
                    help="--segments: shorter speech joins a neighbour or is widened to this (default 1)")
    pr.add_argument("--max-segment", type=_positive, default=10.0, metavar="SECONDS",
                    help="--segments: longer speech is cut at its longest pause (default 10)")
    pr.add_argument("--enrol-self", action="store_true",
                    help="--segments: each recording is one speaker, normalised with statistics of its own segments "
                         "(runs with features.speaker_norm; no labels needed)")


def parser_models(md) -> None:
    md.add_argument("name", nargs="?", default=None, help="a bundled model's name")


def parser_export(xp) -> None:
    xp.add_argument("run_dir", type=Path, help="run directory written by `emofuse cv`")
    xp.add_argument("--fold", type=int, default=None, help="fold number (default: the lowest fold with best.pt)")
    xp.add_argument("--out", type=Path, default=None, help="output file (default: RUN_DIR/export/fold_K.onnx or .pt)")
    xp.add_argument("--format", dest="fmt", choices=["onnx", "torchscript"], default="onnx",
                    help="onnx (default; TorchScript fallback) or torchscript")
    xp.add_argument("--atol", type=float, default=1e-5, help="largest accepted |exported - PyTorch| (default 1e-5)")
    xp.set_defaults(overrides=[])


def parser_cost(co) -> None:
    co.add_argument("--json", action="store_true", help="print a JSON list of rows instead of a table")
    co.add_argument("--device", choices=["cpu", "cuda"], default=None,
                    help="cpu: CPU latency only; cuda: CPU and CUDA (default: cuda when available)")
    co.add_argument("--setting", choices=["ravdess", "paper", "all"], default="all", help="which setting(s) (default all)")
    co.add_argument("--config", type=_config, default="ravdess_mars",
                    help="config of the ravdess setting (default: the shipped ravdess_mars)")
    co.add_argument("--cnn-config", type=_config, default="ravdess_mars_cnn",
                    help="config whose audio encoder and features the paper setting uses (default configs/ravdess_mars_cnn.yaml)")
    co.add_argument("--repeats", type=int, default=10, help="timed forward passes per method (default 10)")
    co.add_argument("--warmup", type=int, default=2, help="untimed forward passes first (default 2)")
    co.add_argument("--out", type=Path, default=None, help="also write the rows as JSON to this file")
    co.set_defaults(overrides=[])


def parser_serve(sv) -> None:
    sv.add_argument("run_dir", type=Path, nargs="?", default=None,
                    help="run directory written by `emofuse cv` or `emofuse fit` (default: the bundled model)")
    sv.add_argument("--model", default=None, metavar="NAME", help="a bundled model instead of a run directory")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=_port, default=8000, help="port, 1 to 65535 (default 8000)")
    sv.add_argument("--max-upload-mb", type=_positive, default=100.0, help="largest accepted upload in MB (default 100)")
    sv.add_argument("--max-queue", type=_at_least_zero, default=4,
                    help="requests that may wait while one prediction runs; more get 503 (default 4)")
    sv.set_defaults(overrides=[])


@command("predict", "predict", parser_predict,
         help="emotion probabilities for audio/video files with a finished `emofuse cv` run",
         description="Decode each FILE (mp4, flv, webm, mkv, wav, flac, mp3, ...), extract the features the "
                     "run's config names and predict with the ensemble of the run's fold models "
                     "(probabilities averaged over folds; --fold k for one). A modality that is missing "
                     "or unreadable is left out of the decision fusion and reported. --json prints a "
                     "list, one object per file: file, pred, probs, modality_probs, modalities, missing "
                     "(and error where no prediction could be made). Exit code 1 when a file got an error entry. "
                     "Folders, patterns, path lists and wav.scp files are predicted chunk by chunk in constant "
                     "memory; --out FILE (.jsonl, .csv) is written as the results are made and resumed by a rerun, "
                     "bad files reported on stderr and counted.")
def cmd_predict(args) -> int:
    from emofuse.data.inputs import expand_inputs
    from emofuse.data.media import VIDEO_SUFFIXES
    from emofuse.inference.predict import Predictor

    if args.stream is not None:
        return predict_stream(args)
    if wants_segments(args):
        return predict_segments(args)
    fmt = predict_format(args)
    run_dir, inputs = run_and_files(args.paths, args.model, listed=bool(args.lists))
    items = expand_inputs(inputs, args.lists)
    predictor = Predictor(run_dir, fold=args.fold)
    if args.speaker or args.speakers:
        code = predict_speaker_groups(args, predictor, items, fmt)
    else:
        code = predict_batch(args, predictor, items, fmt)
    if "visual" not in predictor.modalities and any(i.path.suffix.lower() in VIDEO_SUFFIXES for i in items):
        logging.getLogger("emofuse").info("this model has no visual branch: the picture of a video is not used")
    return code


def predict_format(args) -> str:
    """The output format: --format, --json (= --format json), --out's suffix, else the table."""
    from emofuse.inference.formats import output_format

    if args.json and args.format not in (None, "json"):
        raise ConfigError(f"--json is --format json; give one of --json and --format {args.format}")
    fmt = output_format("json" if args.json else args.format, args.out)
    if args.top_k is not None and fmt == "table":
        raise ConfigError("--top-k lists go in --format json, jsonl or csv (or an --out file); the table shows every class")
    return fmt


def predict_batch(args, predictor, items, fmt: str) -> int:
    """Each recording on its own, chunk by chunk: to --out as the results are made (resumable), or to stdout."""
    from emofuse.inference.batch import CHUNK, run_batch
    from emofuse.inference.formats import ConsoleResults, csv_columns
    from emofuse.inference.results_file import ResultsFile

    names = [predictor.class_names[k] for k in predictor.class_indices(args.classes)]
    columns = csv_columns(names, args.top_k)
    sink = ResultsFile(args.out, fmt, columns, names) if args.out else ConsoleResults(fmt, columns, names)
    chunk = args.chunk or CHUNK
    tell = None if fmt == "table" else lambda _, why: print(f"failed: {why}", file=sys.stderr)  # the table lists them
    report = run_batch(predictor, items, sink.append, done=sink.done, chunk=chunk, workers=args.workers,
                       progress=args.out is not None or len(items) > chunk, openface_dir=args.openface,
                       classes=args.classes, min_confidence=args.min_confidence, top_k=args.top_k, on_failure=tell)
    sink.close()
    if args.out is not None or report.failed:
        print(report.summary(args.out), file=sys.stderr)
    return 1 if report.failed else 0


def predict_speaker_groups(args, predictor, items, fmt: str) -> int:
    """--speaker / --speakers: a speaker's files normalised together, so predicted all at once, to stdout."""
    from emofuse.inference.formats import ConsoleResults, csv_columns, result
    from emofuse.inference.speaker_groups import read_speaker_map

    if args.out is not None:
        raise ConfigError("--speaker and --speakers normalise a speaker's files with statistics of all of them at once, "
                          "which a resumable --out batch does not hold; print the results (--format) instead")
    speakers = read_speaker_map(args.speakers) if args.speakers else args.speaker
    entries = predictor.predict([i.path for i in items], args.openface, speakers, classes=args.classes,
                                min_confidence=args.min_confidence)
    names = [predictor.class_names[k] for k in predictor.class_indices(args.classes)]
    console = ConsoleResults(fmt, csv_columns(names, args.top_k), names)
    console.append([result(e, i.id, args.top_k) for e, i in zip(entries, items)])
    console.close()
    return 1 if any("error" in e for e in entries) else 0


@command("models", "predict", parser_models, help="the bundled models, ready to predict without training (with a card each)",
         description="List the models shipped with emofuse, or show one's card: training data and licence, "
                     "classes, features, cross-validated accuracy for a new speaker, cross-corpus check, "
                     "limits and the command that rebuilds it. `emofuse predict FILE` uses the default one.")
def cmd_models(args) -> int:
    from emofuse import zoo

    if args.name is None:
        for name in zoo.names():
            c = zoo.card(name)
            k0, k10 = c["estimates"]["k=0"]["accuracy"], c["estimates"]["k=10"]["accuracy"]
            default = " (default)" if name == zoo.DEFAULT else ""
            print(f"{name}{default}: {c['task']}, {len(c['classes'])} classes, {', '.join(c['modalities'])}; new speaker "
                  f"{k0:.3f} from a file alone, {k10:.3f} with 10 of their clips; licence {c['training_data']['licence']}")
        print("emofuse models NAME shows a model's card")
        return 0
    print(zoo.format_card(zoo.card(args.name)), end="")
    return 0


@command("export", "predict", parser_export,
         help="export a cv run's fold model to ONNX (or TorchScript), checked against PyTorch",
         description="Export the selected weights of one fold of an `emofuse cv` run: named inputs per "
                     "modality (plus <modality>_lengths for frame sequences), outputs probs (fused) and "
                     "probs_<modality>; batch and frame axes dynamic. The file is kept only if onnxruntime "
                     "(or TorchScript) reproduces PyTorch within --atol on random inputs; where ONNX cannot "
                     "express the model it falls back to TorchScript and says why. Writes the model and a "
                     "JSON description beside it (default: RUN_DIR/export/fold_K.onnx).")
def cmd_export(args) -> int:
    from emofuse.inference.export import export_run

    r = export_run(args.run_dir, fold=args.fold, out=args.out, fmt=args.fmt, atol=args.atol)
    if r.fallback_reason:
        print(f"exported TorchScript instead of ONNX: {r.fallback_reason}")
    runtime = "onnxruntime" if r.format == "onnx" else "TorchScript"
    print(f"fold {r.fold} exported as {r.format}: {r.path} (inputs {', '.join(r.inputs)}; outputs {', '.join(r.outputs)})")
    print(f"check: {runtime} vs PyTorch on {r.checks} random batches, max |difference| {r.max_abs_diff:.2e} <= atol {r.atol:g}: OK")
    return 0


@command("cost", "predict", parser_cost, help="parameters, FLOPs and latency per sample of every registered method",
         description="One row per registered fusion (default parameters) and per loss-only variant of the "
                     "average fusion, in two settings: `ravdess` (the encoders of --config on its feature "
                     "dimensions) and `paper` (3D ResNeXt-50 on 30 face crops of 224x224 + the 1D CNN of "
                     "--cnn-config on 2.45 s of MFCC frames). FLOPs: ptflops (pytorch backend) "
                     "multiply-accumulates, reported as MACs and FLOPs = 2 x MACs. Latency: median of "
                     "--repeats forward passes at batch 1 after --warmup, with torch's thread count.")
def cmd_cost(args) -> int:
    import json

    import torch

    from emofuse.inference.cost import PAPER_GFLOPS, cost_table, devices_for, markdown_table, paper_setting, ravdess_setting
    from emofuse.core.runs import write_json

    devices = devices_for(args.device)
    settings = []
    if args.setting in ("ravdess", "all"):
        settings.append(ravdess_setting(args.config))
    if args.setting in ("paper", "all"):
        settings.append(paper_setting(args.cnn_config))
    rows = cost_table(settings, devices, repeats=args.repeats, warmup=args.warmup)
    if args.out:
        write_json(args.out, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"torch threads: {torch.get_num_threads()}; latency: median of {args.repeats} runs after {args.warmup} warm-up, batch 1")
    for s in settings:
        print(f"{s.name}: {s.note}")
    print(markdown_table(rows), end="")
    paper = next((r for r in rows if r["setting"] == "paper" and r["method"] == "average" and "gmacs" in r), None)
    if paper:
        print(f"paper setting, average fusion: {paper['gmacs']:.2f} GMACs = {paper['gflops']:.2f} GFLOPs; "
              f"the paper's Table II: {PAPER_GFLOPS} G")
    return 0


@command("serve", "predict", parser_serve, help="a local web page and JSON API to try a cv run on recordings",
         description="Serve a page to upload or record a recording and see the fused and per-modality "
                     "probabilities (with a timeline of the speech segments of long recordings), and "
                     "a JSON API: POST /api/predict (multipart field 'file'; the JSON of `emofuse predict --json` for "
                     "that file), POST /api/analyze (the same upload; that prediction and the timeline the page "
                     "draws), GET /api/model (what the model is), GET /api/health. Predictions run one at a time. "
                     "Needs the serve extra: pip install 'emofuse[serve]'.")
def cmd_serve(args) -> int:
    from emofuse.serve import serve

    if args.run_dir is not None and args.model is not None:
        raise ConfigError(f"give a run directory ({args.run_dir}) or --model {args.model}, not both")
    if args.run_dir is None:
        from emofuse import zoo

        args.run_dir = zoo.model_dir(args.model)
    serve(args.run_dir, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, max_queue=args.max_queue)
    return 0


def predict_stream(args) -> int:
    """``predict --stream FILE``: the file played as a microphone would deliver it, one line per window."""
    import json
    from dataclasses import asdict

    from emofuse.data.audio import load_audio
    from emofuse.inference.predict import Predictor
    from emofuse.inference.stream import audio_chunks

    run_dir, files = run_and_files([*args.paths, args.stream], args.model)
    if files != [args.stream]:
        raise ConfigError(f"--stream plays one file; predict {', '.join(map(str, files[:-1]))} without --stream")
    if args.openface or args.speaker or args.speakers:
        raise ConfigError("--stream predicts each window from its audio alone: --openface, --speaker and --speakers do not apply")
    if args.classes or args.min_confidence is not None:
        raise ConfigError("--classes and --min-confidence apply to files; --stream answers among all classes")
    predictor = Predictor(run_dir, fold=args.fold)

    def chunks():  # decoded once stream() has accepted the run, whose extractor gives the rate
        rate = predictor.extractor.sample_rate
        yield from audio_chunks(load_audio(args.stream, rate), rate, args.chunk_ms / 1000, real_time=not args.fast)

    windows = 0
    for w in predictor.stream(chunks(), window_s=args.window, hop_s=args.hop):
        if not windows:  # said once: the run's modalities that live input leaves out
            for m, reason in w.missing.items():
                print(f"{m} missing: {reason}", file=sys.stderr)
        windows += 1
        answer = "no speech" if w.pred is None else f"{w.pred:<10} {w.probs[w.pred]:.2f}"
        line = json.dumps(asdict(w)) if args.json else \
            f"{w.start_s:7.2f}-{w.end_s:7.2f} s  {answer}  latency {1000 * w.latency_s:.0f} ms"
        print(line, flush=True)
    if not windows:
        print(f"{args.stream}: shorter than the {args.window:g} s window, nothing predicted", file=sys.stderr)
    return 0 if windows else 1


def _names(text: str) -> list[str]:
    """``--classes angry,happy`` -> [angry, happy]."""
    return [name.strip() for name in text.split(",") if name.strip()]


def run_and_files(paths: list[Path], model: str | None, listed: bool = False) -> tuple[Path, list[Path]]:
    """``[RUN_DIR] INPUT...``: a leading directory with a config.yaml is the run; else the bundled model (--model, or
    the default one) answers, and every path is an input (a file, a folder of recordings, a pattern). ``listed``:
    inputs also come from --list, so none need follow."""
    from emofuse import zoo
    from emofuse.data.inputs import media_in

    if not paths and not listed:
        raise ConfigError("name the media files to predict (after a run directory, or alone for the bundled model)")
    if paths and paths[0].is_dir() and (paths[0] / "config.yaml").is_file():
        if model is not None:
            raise ConfigError(f"give a run directory ({paths[0]}) or --model {model}, not both")
        if len(paths) == 1 and not listed:
            raise ConfigError(f"{paths[0]} is a run directory; name the media files to predict after it")
        return paths[0], paths[1:]
    if paths and paths[0].is_dir() and len(paths) > 1 and not media_in(paths[0]):
        raise ConfigError(f"{paths[0]}: no config.yaml, and no recordings in it; a directory before the files must be "
                          "a run directory written by `emofuse cv` or `emofuse fit`, or a folder of recordings")
    return zoo.model_dir(model), paths


def wants_segments(args) -> bool:
    """--segments, or recordings named one by one of which one is longer than AUTO_SEGMENT_S (said on stderr)."""
    from emofuse.core.errors import DataError
    from emofuse.data.audio_stream import duration_s
    from emofuse.inference.segments import AUTO_SEGMENT_S

    if args.segments:
        return True
    if getattr(args, "out", None) or getattr(args, "top_k", None) or getattr(args, "lists", None):
        return False  # one answer per file was asked for
    files = [p for p in args.paths if p.is_file()]
    if not files or len(files) < len(args.paths) - 1 or any(p.is_dir() for p in args.paths[1:]):
        return False  # a folder or a list of inputs: the batch runner's
    for f in files:
        try:
            seconds = duration_s(f)
        except DataError:
            continue  # predict reports the file
        if seconds > AUTO_SEGMENT_S:
            print(f"{f}: {seconds:.0f} s long, over {AUTO_SEGMENT_S:g} s: predicted per speech segment (--segments)",
                  file=sys.stderr)
            return True
    return False


def predict_segments(args) -> int:
    """``predict --segments FILE...``: each recording cut by speech; a table, or JSON / CSV on stdout (--json,
    --format), and the timeline in a file (--segments-out)."""
    import json

    from emofuse.core.errors import DataError
    from emofuse.data.audio_stream import audio_blocks
    from emofuse.inference.predict import Predictor
    from emofuse.inference.segments import SegmentSettings, segment_recording
    from emofuse.inference.timeline_formats import format_of, render, to_table, write_timeline

    run_dir, files = run_and_files(args.paths, args.model)
    folders = [str(f) for f in files if f.is_dir()]
    if folders:
        raise ConfigError(f"--segments takes recordings, not folders: {', '.join(folders)}")
    if args.openface or args.speaker or args.speakers:
        raise ConfigError("--segments predicts each segment from its audio: --openface, --speaker and --speakers do not "
                          "apply (--enrol-self: each recording is one speaker)")
    if getattr(args, "out", None) or getattr(args, "top_k", None) or getattr(args, "lists", None):
        raise ConfigError("--segments answers per segment: its timeline goes to --segments-out FILE; --out, --top-k "
                          "and --list are for one answer per file")
    if args.segments_out is not None:
        format_of(args.segments_out, args.timeline_format)  # refused before any recording is read
    settings = SegmentSettings(min_s=args.min_segment, max_s=args.max_segment)
    predictor = Predictor(run_dir, fold=args.fold)
    fmt = "json" if args.json else getattr(args, "format", None)
    results, failed = [], 0
    for f in files:
        try:
            r = segment_recording(predictor, lambda rate, f=f: audio_blocks(f, rate), str(f), settings,
                                  enrol_self=args.enrol_self, classes=args.classes, min_confidence=args.min_confidence)
        except DataError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        results.append(r)
        for m, reason in r["missing"].items():
            print(f"{f}: {m} missing: {reason}", file=sys.stderr)
        if fmt in (None, "table"):
            print(to_table(r), end="", flush=True)
        elif fmt == "jsonl":
            print(json.dumps(r), flush=True)
    if fmt == "json":
        print(json.dumps(results, indent=2))
    elif fmt == "csv":
        print(render(results, "csv"), end="")
    if args.segments_out is not None and results:
        write_timeline(args.segments_out, results, args.timeline_format)
    return 1 if failed else 0
