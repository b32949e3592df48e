"""Commands about data and parts: feature extraction, corpus manifests, the part registries, the touch fixture.

Each command imports what it needs when it runs, so that `emofuse --help` and argument errors stay quick."""

from __future__ import annotations

import sys
from pathlib import Path

from emofuse.api import locate_data
from emofuse.cli.commands import command
from emofuse.cli.common import _common_data_args, _cache_dir, _config
from emofuse.core.registry import ConfigError


def parser_extract(ex) -> None:
    ex.add_argument("config", type=_config, help="experiment YAML or shipped config name")
    ex.add_argument("--shard", default=None, metavar="I/N",
                    help="extract only shard I of N (1-based; takes are assigned by a hash of their id)")
    _common_data_args(ex)


def parser_manifest(mf) -> None:
    mf.add_argument("corpus", help="ravdess, crema-d, tess, savee, emodb, nemo, meld, folder, or emobox; or merge; "
                                   "or touch (pressure-grid captures, one CSV each)")
    mf.add_argument("dir", type=Path, nargs="+", metavar="DIR",
                    help="the corpus folder (searched at any depth); for emobox, one or more partition files (.jsonl); "
                         "for merge, the manifests of several corpora")
    mf.add_argument("--audio-root", type=Path, default=None,
                    help="emobox only (required there): the folder holding the corpus's audio, searched at any depth")
    mf.add_argument("--relative-to", type=Path, default=None,
                    help="write paths relative to this folder (where the manifest will be; default: absolute paths)")
    mf.add_argument("--speaker-regex", default=None,
                    help="find the speaker in each file name with this pattern (its group named speaker, else its first "
                         "group); required for folder, overrides the corpus's own speaker ids otherwise")
    mf.add_argument("--corpus", dest="corpus_name", default=None,
                    help="the corpus column's value (default: the layout's name; for folder, the folder's name; for "
                         "emobox, each line's dataset)")
    touch = mf.add_argument_group("touch (pressure-grid captures: frames written to --out, with its manifest.csv)")
    touch.add_argument("--pattern", default=None,
                       help="where person and label are in each capture's name or folders, e.g. "
                            "'{speaker}_{label}_{take}.csv' or '{label}/{speaker}_{take}.csv' ({} matches anything)")
    touch.add_argument("--regex", default=None,
                       help="instead of --pattern: a regular expression searched in each capture's path under DIR, "
                            "with the groups speaker and label")
    touch.add_argument("--out", type=Path, default=None, help="folder to write touch/<id>.npy and manifest.csv to")
    touch.add_argument("--grid", default=None, metavar="RxC",
                       help="the sensor's rows x columns, e.g. 8x8 (default: read from the files)")
    touch.add_argument("--rate", type=float, default=None, metavar="HZ",
                       help="frames per second of every capture (default: from a time column, where the files have one)")
    touch.add_argument("--time-column", default=None,
                       help="the column of frame times, by name or 0-based number (default: a column named like time, "
                            "timestamp, ms)")
    touch.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                       help="turn the scale over so that higher means more pressure: auto (where most captures rest "
                            "near their highest values, as sensors that read high at rest do), yes or no")
    mf.set_defaults(overrides=[])


def parser_registry(show) -> None:
    show.set_defaults(overrides=[])


def parser_make_touch_fixture(tf) -> None:
    tf.add_argument("out_dir", type=Path, help="directory to write (manifest.csv, touch/)")
    tf.add_argument("--speakers", type=int, default=6, help="people touching (default 6)")
    tf.add_argument("--per-gesture", type=int, default=8, help="samples of each gesture per person (default 8)")
    tf.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tf.add_argument("--captures", action="store_true",
                    help="write sensor-like captures instead: one CSV per capture, OUT_DIR/<person>/<person>_<gesture>_"
                         "<take>.csv, 8 s long with idle frames, per-person gain and offset, dead and noisy cells, "
                         "inverted scale, 54 Hz (read them with emofuse manifest touch)")
    tf.add_argument("--grid", type=int, default=8, help="--captures: cells per side (default 8)")
    tf.add_argument("--layout", choices=("frame", "rows"), default="frame",
                    help="--captures: a frame per line after its time (frame), or a grid row per line, frames "
                         "separated by blank lines (rows)")
    tf.add_argument("--upright", action="store_true", help="--captures: higher = more pressure (default: inverted)")


@command("extract", "data", parser_extract, help="extract (and cache) the features a config needs",
         description="Extract audio features (and, for configs whose visual input is video, face clips "
                     "or face features) for every take in parallel into the cache, and check that "
                     "every take has its visual features. With --shard i/n only the "
                     "i-th of n disjoint shares of the takes: run shards 1..n on several machines (or "
                     "processes) with one shared --cache and together they fill it.")
def cmd_extract(args) -> int:
    from emofuse.config.loading import load_config
    from emofuse.features.cache import FeatureCache
    from emofuse.datasets.build import build_features

    from emofuse.features.extract import parse_shard

    config, data = locate_data(load_config(args.config, args.overrides), args.data)
    shard = parse_shard(args.shard) if args.shard else None
    fs = build_features(config.data, config.features, data, FeatureCache(_cache_dir(args.cache)),
                        progress=not args.no_progress, shard=shard)
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    print(f"{len(fs.meta)} takes ready{where}; feature dims {fs.input_dims}; {len(fs.skipped)} skipped")
    return 0


@command("manifest", "data", parser_manifest, help="write a manifest CSV of a corpus folder to standard output",
         description="List the samples of a corpus laid out as it ships (ravdess, crema-d, tess, savee, "
                     "emodb, nemo) or as DIR/<label>/<file> (folder) as a manifest for data.dataset: "
                     "manifest: id, corpus (the layout's name, or --corpus), speaker, gender (where the corpus "
                     "documents it), label (common vocabulary: neutral, calm, happy, sad, angry, fearful, disgust, "
                     "surprised), corpus_label (as the corpus writes it), audio, video, and the corpus's own fields "
                     "(nemo: transcript, normalized_text, age; meld, written text without media: split (the official train / "
                     "dev / test), transcript, context (the previous utterance of the dialogue), character, sentiment; "
                     "its speaker is the dialogue). Manifests of several corpora, merged, train one model "
                     "on them all (docs/own-data.md). emobox reads EmoBox partition files "
                     "(JSON lines) instead of a folder and finds each clip by its file stem under --audio-root; several "
                     "*_test_fold_K files add a fold column (each clip's test fold), which fixes the "
                     "protocol's folds. Files that do not fit the naming scheme, and listed samples whose file "
                     "is missing, are reported on standard error and left out. Examples: emofuse manifest nemo "
                     "../shared/data/nemo > nemo.csv; emofuse manifest emobox ravdess_test_fold_*.jsonl "
                     "--audio-root ../shared/data/ravdess/audio16k > ravdess_folds.csv; emofuse manifest merge "
                     "nemo.csv crema.csv > both.csv (one manifest of several corpora: columns united, file paths "
                     "absolute or --relative-to, a corpus column)")
def cmd_manifest(args) -> int:
    import re

    from emofuse.data.corpora import CORPORA, write_manifest
    from emofuse.core.errors import DataError

    try:
        regex = re.compile(args.speaker_regex) if args.speaker_regex else None
    except re.error as err:
        raise ConfigError(f"--speaker-regex {args.speaker_regex!r}: {err}") from None

    touch_options = [o for o, v in (("--pattern", args.pattern), ("--regex", args.regex), ("--out", args.out),
                                    ("--grid", args.grid), ("--rate", args.rate), ("--time-column", args.time_column),
                                    ("--invert", args.invert != "auto" or None)) if v is not None]
    if args.corpus == "touch":
        return touch_manifest(args)
    if touch_options:
        raise ConfigError(f"{', '.join(touch_options)}: for touch captures only (emofuse manifest touch DIR ...)")
    if args.corpus == "merge":
        from emofuse.data.corpora.base import merge_manifests

        sys.stdout.write(merge_manifests(args.dir, args.relative_to))
        return 0
    if args.corpus == "emobox":
        from emofuse.data.corpora.emobox import emobox

        if args.audio_root is None:
            raise ConfigError("emobox needs --audio-root: the folder holding the corpus's audio files")
        listing, source = emobox(args.dir, args.audio_root, regex), args.audio_root
    else:
        if args.audio_root is not None:
            raise ConfigError("--audio-root is for emobox partition files; a corpus folder holds its own audio")
        if len(args.dir) != 1:
            raise ConfigError(f"{args.corpus} reads one corpus folder ({len(args.dir)} given)")
        listing, source = CORPORA.get(args.corpus)(args.dir[0], regex), args.dir[0]
    if not listing.rows:
        missing = f", {len(listing.missing)} listed samples without their file" if listing.missing else ""
        raise DataError(source, f"no file fits the {args.corpus} naming scheme ({len(listing.unrecognised)} media files "
                                f"found that do not{missing})")
    labels = {r["label"] for r in listing.rows}
    if len(labels) == 1 and args.corpus == "folder":
        (label,) = labels
        raise DataError(source, f"every sample got the label {label!r}: the folder layout takes each file's label from "
                                f"the folder holding it (DIR/<label>/<file>, one folder per emotion); point DIR at the "
                                f"folder that holds the label folders")
    default = args.corpus_name or (Path(source).absolute().name if args.corpus == "folder" else args.corpus)
    sys.stdout.write(write_manifest(listing, args.relative_to, default))
    speakers = {r["speaker"] for r in listing.rows}
    print(f"{len(listing.rows)} samples of {len(speakers)} speakers from {source}", file=sys.stderr)
    for found, what in ((listing.unrecognised, f"files that do not fit the {args.corpus} naming scheme"),
                        (listing.missing, "listed samples whose file is missing")):
        if found:
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            print(f"left out {len(found)} {what}: {', '.join(map(str, found[:5]))}{more}", file=sys.stderr)
    return 0


def touch_manifest(args) -> int:
    """``emofuse manifest touch``: the captures' frames and their manifest written to ``--out``."""
    from emofuse.core.errors import DataError
    from emofuse.data.corpora.touch import name_matcher, read_touch_corpus, write_touch_corpus
    from emofuse.data.touch_csv import parse_grid

    if args.out is None:
        raise ConfigError("touch needs --out: the folder for the frames (touch/<id>.npy) and manifest.csv")
    if len(args.dir) != 1:
        raise ConfigError(f"touch reads one folder of captures ({len(args.dir)} given)")
    try:
        grid = parse_grid(args.grid) if args.grid else None
    except ValueError as err:
        raise ConfigError(f"--grid: {err}") from None
    matcher = name_matcher(args.pattern, args.regex)
    corpus = read_touch_corpus(args.dir[0], matcher, args.pattern is not None, grid, args.time_column, args.rate,
                               args.invert)
    if not corpus.rows:
        raise DataError(args.dir[0], f"no capture (.csv, .tsv, .txt) fits {args.pattern or args.regex!r} "
                                     f"({len(corpus.unrecognised)} files that do not)")
    manifest = write_touch_corpus(corpus, args.out)
    speakers, labels = {r["speaker"] for r in corpus.rows}, sorted({r["label"] for r in corpus.rows})
    print(f"{len(corpus.rows)} captures of {len(speakers)} people, labels {', '.join(labels)}: {manifest}", file=sys.stderr)
    for note in corpus.notes:
        print(f"  {note}", file=sys.stderr)
    if corpus.unrecognised:
        more = f" and {len(corpus.unrecognised) - 5} more" if len(corpus.unrecognised) > 5 else ""
        print(f"left out {len(corpus.unrecognised)} files that do not fit the pattern: "
              f"{', '.join(map(str, corpus.unrecognised[:5]))}{more}", file=sys.stderr)
    return 0


@command("registry", "data", parser_registry, help="list the registered extractors, encoders, fusions and losses",
         description="List every registered part that a config can name.")
def cmd_registry(args) -> int:
    from emofuse.api import list_parts

    for kind, names in list_parts().items():
        print(f"{kind}: {', '.join(names)}")
    return 0


def parser_configs(cf) -> None:
    cf.set_defaults(overrides=[])


@command("configs", "data", parser_configs, help="list the shipped configs (recipes) with their purpose",
         description="List the experiment configs shipped with emofuse, one line each: its name and what it is for "
                     "(the file's first comment line). Any command's CONFIG takes such a name, e.g. "
                     "emofuse cv ravdess_mars --out runs/mars; a path to a YAML file works as well.")
def cmd_configs(args) -> int:
    from emofuse.config.recipes import recipes, recipes_dir

    shipped = recipes()
    width = max(len(r.name) for r in shipped)
    for r in shipped:
        print(f"{r.name:<{width}}  {r.purpose}")
    print(f"{len(shipped)} configs in {recipes_dir()}", file=sys.stderr)
    return 0


@command("fixtures touch", "data", parser_make_touch_fixture,
         help="write a synthetic social-touch manifest (8 x 8 pressure grids)",
         description="Write synthetic social-touch data: 8 x 8 pressure grids at 50 Hz for four gestures "
                     "(pat, stroke, press, tickle) by several people, one .npy of frames (T, 64) per sample "
                     "and a manifest with a touch_features column (for tests and demos; not real data). With "
                     "--captures, sensor-like recordings instead: one CSV per capture as sensors write them, for "
                     "emofuse manifest touch to read.",
         aliases=("make-touch-fixture",))
def cmd_make_touch_fixture(args) -> int:
    from emofuse.data.touch_fixture import write_touch_fixture

    if args.captures:
        from emofuse.data.touch_captures import write_touch_captures

        out = write_touch_captures(args.out_dir, args.speakers, args.per_gesture, args.seed, args.grid,
                                   layout=args.layout, inverted=not args.upright)
        print(f"synthetic touch captures for {args.speakers} people in {out} (4 gestures x {args.per_gesture} each, "
              f"{args.grid} x {args.grid}, {args.layout} layout); emofuse manifest touch {out} "
              f"--pattern '{{speaker}}_{{label}}_{{take}}.csv' --out DIR{' --rate 54' if args.layout == 'rows' else ''}")
        return 0
    manifest = write_touch_fixture(args.out_dir, args.speakers, args.per_gesture, args.seed)
    print(f"synthetic touch data for {args.speakers} people in {manifest} (4 gestures x {args.per_gesture} samples each)")
    return 0
