"""One canonical label order for every dataset, and each dataset's own order mapped to it
(chapter 01_data, "FER2013").

The canonical order is FER2013's, extended by Contempt for FERPlus and AffectNet, so a
FER2013 label needs no mapping. Sources: FER2013 README; RAF-DB ``list_patition_label.txt``
(1-based: 1 Surprise, 2 Fear, 3 Disgust, 4 Happy, 5 Sad, 6 Anger, 7 Neutral); FERPlus
``fer2013new.csv`` column order; AffectNet ``expression`` codes.
"""
from __future__ import annotations

import numpy as np

CANONICAL = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral", "Contempt")
BASIC7 = CANONICAL[:7]

# dataset's own label -> canonical index
NATIVE_TO_CANONICAL: dict[str, dict[int, int]] = {
    "fer2013": {i: i for i in range(7)},
    # RAF-DB basic, after subtracting 1 from the file's 1-based labels
    "rafdb": {0: 5, 1: 2, 2: 1, 3: 3, 4: 4, 5: 0, 6: 6},
    # FERPlus vote columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt
    "ferplus": {0: 6, 1: 3, 2: 5, 3: 4, 4: 0, 5: 1, 6: 2, 7: 7},
    # AffectNet: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt
    "affectnet": {0: 6, 1: 3, 2: 4, 3: 5, 4: 2, 5: 1, 6: 0, 7: 7},
}


def class_index(name: str, class_names=CANONICAL) -> int:
    """Index of a class name (case-insensitive; 'Anger' and 'Angry' are the same class)."""
    aliases = {"anger": "angry", "happiness": "happy", "sadness": "sad", "surprised": "surprise",
               "fearful": "fear", "disgusted": "disgust", "neutrality": "neutral"}
    key = name.strip().lower()
    key = aliases.get(key, key)
    lowered = [c.lower() for c in class_names]
    if key not in lowered:
        raise ValueError(f"unknown class {name!r}: known classes are {', '.join(class_names)}")
    return lowered.index(key)


def to_canonical(dataset: str, labels) -> np.ndarray:
    """Map a dataset's own integer labels to the canonical order."""
    table = NATIVE_TO_CANONICAL[dataset]
    labels = np.asarray(labels)
    bad = [int(v) for v in np.unique(labels) if int(v) not in table]
    if bad:
        raise ValueError(f"{dataset}: labels {bad} are outside its label set {sorted(table)}")
    return np.vectorize(table.__getitem__, otypes=[np.int64])(labels) if labels.size else labels.astype(np.int64)
