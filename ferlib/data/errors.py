"""Error messages shared by the real-data loaders (chapter 01_data, "FER2013").

ferlib never downloads data: a missing dataset is an error saying which files to get and
where they are published (by name; no URL is fetched)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["DataFormatError", "WHERE_TO_GET", "missing_root_message", "existing_root"]


class DataFormatError(ValueError):
    """A data file that exists but cannot be read as the expected format (names file and row)."""


WHERE_TO_GET = {
    "fer2013": ("fer2013.csv (or fer2013.csv.gz, icml_face_data.csv, or train/<class>/*.jpg + "
                "test/<class>/*.jpg folders)",
                "the Kaggle competition 'Challenges in Representation Learning: Facial Expression "
                "Recognition Challenge' (research use under its terms)"),
    "ferplus": ("fer2013.csv plus fer2013new.csv in the same folder",
                "fer2013.csv from the Kaggle FER2013 challenge; fer2013new.csv from Microsoft's "
                "'FERPlus' repository on GitHub"),
    "rafdb": ("EmoLabel/list_patition_label.txt and Image/aligned/*_aligned.jpg",
              "the Real-world Affective Faces Database (RAF-DB), by request to its authors at BUPT"),
    "affectnet": ("train/<class>/ and val/<class>/ image folders, or training.csv / validation.csv "
                  "with an 'expression' column plus the images they name",
                  "AffectNet, by request to its authors (Mollahosseini et al., University of Denver)"),
    "sfew": ("Train/<class>/ and Val/<class>/ image folders",
             "SFEW 2.0 (Static Facial Expressions in the Wild), by request to the EmotiW organisers"),
}


def missing_root_message(dataset: str, root) -> str:
    what, where = WHERE_TO_GET[dataset]
    head = (f"{dataset}: no data_root given" if root is None
            else f"{dataset}: data root {str(root)!r} does not exist")
    return (f"{head}. ferlib never downloads data: put {what} in a folder and pass it as "
            f"data_root. Get it from {where}. The SynthFACS benchmark (dataset='synthfacs') "
            f"needs no files.")


def existing_root(dataset: str, root) -> Path:
    """``root`` as a Path when it exists; otherwise FileNotFoundError with
    :func:`missing_root_message` (what to get and where)."""
    if root is None:
        raise FileNotFoundError(missing_root_message(dataset, None))
    p = Path(root).expanduser()
    if not p.exists():
        raise FileNotFoundError(missing_root_message(dataset, p))
    return p
