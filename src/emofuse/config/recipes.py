"""The shipped recipes: the experiment configs of the repository's ``configs/``, installed with the package as
``emofuse/configs`` (setup.py maps the folder), so that ``emofuse cv ravdess_mars`` works without a clone."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from emofuse.core.registry import ConfigError, did_you_mean


def recipes_dir() -> Path:
    """The configs folder: inside the installed package, else (a source checkout, an editable install) the
    repository's ``configs/``, which is what the package ships."""
    shipped = Path(str(resources.files("emofuse"))) / "configs"
    return shipped if shipped.is_dir() else Path(__file__).resolve().parents[3] / "configs"


@dataclass(frozen=True)
class Recipe:
    name: str  # relative to the configs folder, without .yaml: "ravdess_mars", "emi_ablation/1_average"
    path: Path
    purpose: str  # the file's first comment line


def recipes() -> list[Recipe]:
    """Every shipped config, sorted by name."""
    root = recipes_dir()
    return [Recipe(p.relative_to(root).with_suffix("").as_posix(), p, _purpose(p)) for p in sorted(root.rglob("*.yaml"))]


def _purpose(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").rstrip(" :,(")
        if line.strip():
            break
    return ""


def resolve_config(text: str) -> Path:
    """A CONFIG argument as a path: an existing file as given; else a shipped config's name (with or without .yaml);
    a name with no slash that is neither is refused with the nearest shipped names."""
    path = Path(text)
    if path.exists():
        return path
    name = text.removesuffix(".yaml").removesuffix(".yml")
    shipped = {r.name: r.path for r in recipes()}
    if name in shipped:
        return shipped[name]
    if "/" in text or "\\" in text:
        return path  # a path that does not exist: its reader says so
    raise ConfigError(f"{text!r} is neither a file nor a shipped config{did_you_mean(name, shipped)}; "
                      f"`emofuse configs` lists them")
