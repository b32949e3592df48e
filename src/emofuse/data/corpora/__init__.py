"""`emofuse manifest CORPUS DIR`: a manifest (data/manifest.py) from the layout a corpus ships in.

Each layout is one module that turns the files under a folder into rows (``id``, ``speaker``, ``gender`` where
the corpus documents it, ``label`` in the common vocabulary, ``corpus_label`` as the corpus writes it, ``audio`` /
``video``, and the corpus's own fields), registered under its name. ``emobox.py`` reads EmoBox's partition files
of a corpus instead of its folder.
"""

from emofuse.data.corpora.base import CORPORA, COMMON_EMOTIONS, Listing, common_label, write_manifest
from emofuse.data.corpora import crema_d, emodb, folder, meld, nemo, ravdess, savee, tess  # noqa: F401  (registration)

__all__ = ["CORPORA", "COMMON_EMOTIONS", "Listing", "common_label", "write_manifest"]
