"""The packages of src/ plus the repository's configs/ installed as emofuse/configs: the shipped recipes (`emofuse
configs`), kept where a clone's users and the docs find them. pyproject.toml holds everything else."""

from setuptools import find_packages, setup

setup(packages=[*find_packages("src"), "emofuse.configs"], package_dir={"": "src", "emofuse.configs": "configs"})
