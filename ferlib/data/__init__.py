"""Data for the book (chapter 01_data): the SynthFACS benchmark, readers for FER2013, FERPlus,
RAF-DB, AffectNet and SFEW (never downloading), long-tail and label-noise tools, and
``load_splits``, the single entry point the chapters use."""
from .dataset import FaceDataset
from .labels import BASIC7, CANONICAL, NATIVE_TO_CANONICAL, class_index, to_canonical
from .synthfacs import (AU_LIST, AU_NAMES, CONDITIONS, EXPRESSION_AUS, RAFDB_TRAIN_COUNTS,
                        SynthFACSConfig, au_vector, make_identity_pairs, make_pairs,
                        make_synthfacs, make_synthfacs_split, render_face, render_faces)
from .longtail import (add_label_noise, class_balanced_sampler, flip_labels, long_tail_counts,
                       make_long_tailed, stratified_cap, stratified_split)
from .splits import DATASETS, Splits, load_splits
from .cache import LoadedData, cache_dir
from .errors import DataFormatError
from .fer2013 import load_fer2013
from .ferplus import load_ferplus
from .folders import load_affectnet, load_image_folders, load_rafdb, load_sfew

__all__ = [
    "FaceDataset", "BASIC7", "CANONICAL", "NATIVE_TO_CANONICAL", "class_index", "to_canonical",
    "AU_LIST", "AU_NAMES", "CONDITIONS", "EXPRESSION_AUS", "RAFDB_TRAIN_COUNTS", "SynthFACSConfig",
    "au_vector", "make_identity_pairs", "make_pairs", "make_synthfacs", "make_synthfacs_split",
    "render_face", "render_faces", "class_balanced_sampler", "flip_labels", "add_label_noise",
    "long_tail_counts",
    "make_long_tailed", "stratified_cap", "stratified_split", "DATASETS", "Splits", "load_splits",
    "LoadedData", "cache_dir", "DataFormatError", "load_fer2013", "load_affectnet", "load_ferplus",
    "load_image_folders", "load_rafdb", "load_sfew",
]
