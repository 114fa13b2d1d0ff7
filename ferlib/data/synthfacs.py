"""SynthFACS: procedural grey faces driven by FACS action units (chapter 01_data, "SynthFACS").

Every face is drawn from soft shapes (signed distances on a coordinate grid, evaluated for a
whole batch at once) whose geometry is moved by action-unit (AU) intensities in [0, 1]:

======  =====================  ==========================================================
AU      FACS name              what it moves here
======  =====================  ==========================================================
1       inner brow raiser      inner brow ends up, central forehead lines
2       outer brow raiser      outer brow ends up, brow arch, forehead lines widen
4       brow lowerer           brows down and together, vertical glabella lines
5       upper lid raiser       upper lid up (more sclera shows)
6       cheek raiser           cheeks up and brighter, lower lid up, crease, crow's feet
7       lid tightener          both lids narrow, lower-lid crease
9       nose wrinkler          nose wrinkles, nostrils up, inner brows down
10      upper lip raiser       upper lip up (teeth), deep nasolabial folds
12      lip corner puller      corners up and out, nasolabial folds
15      lip corner depressor   corners down
17      chin raiser            lower lip up and fuller, chin crease
20      lip stretcher          mouth wider, flatter
23      lip tightener          lips thinner and narrower
24      lip pressor            lips pressed thin
25      lips part              small opening
26      jaw drop               large opening, chin lower
======  =====================  ==========================================================

The seven basic expressions draw their AUs from EMFACS-style prototypes
(:data:`EXPRESSION_AUS`; Ekman & Friesen 1978, Friesen & Ekman 1983): Happy 6+12,
Sad 1+4+15, Surprise 1+2+5+26, Fear 1+2+4+5+7+20+26, Angry 4+5+7+23, Disgust 9+10(+15),
Neutral none; each sample has a random apex strength, per-AU jitter, occasionally a missing
prototype AU or an extra random AU.

Nuisance factors, each with its own knob in :class:`SynthFACSConfig`: identity (face shape,
feature placement, skin and hair tone; a fixed identity id per face, disjoint between splits),
head pose (roll; yaw as a horizontal foreshortening with depth-dependent shift), an
illumination gradient and gain, occlusion patches (glasses, sunglasses, a hand), blur and
sensor noise.

Determinism: per-pixel work uses only IEEE-exact float32 arithmetic (``+ - * /``, sqrt,
min/max), sines and cosines are polynomials, and sensor noise is a counter-based hash of
(per-sample seed, pixel), so the same seed gives the same bytes on any machine and for any
chunk size. Sample parameters come from a :class:`numpy.random.Generator`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .dataset import FaceDataset
from .labels import BASIC7

__all__ = [
    "AU_LIST", "AU_NAMES", "EXPRESSION_AUS", "EXPRESSION_OPTIONAL_AUS", "RAFDB_TRAIN_COUNTS",
    "CONDITIONS", "IDENTITY_FIELDS", "NUISANCE_FIELDS", "SynthFACSConfig", "au_vector",
    "class_counts_for", "sample_aus", "sample_identities", "sample_nuisance", "render_faces",
    "render_face", "make_synthfacs_split", "make_synthfacs", "make_identity_pairs", "make_pairs",
]

#: the 16 FACS action units SynthFACS renders, in the order of an AU vector's columns
AU_LIST: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 24, 25, 26)
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 15: "lip corner depressor", 17: "chin raiser", 20: "lip stretcher",
    23: "lip tightener", 24: "lip pressor", 25: "lips part", 26: "jaw drop"}
_AU_COL = {au: i for i, au in enumerate(AU_LIST)}

#: Prototype AUs per class (canonical BASIC7 names). Fear reads AU20 where the AHM paper
#: repeats AU2 (see reference-facts, "Errors in the papers' formulas").
EXPRESSION_AUS: dict[str, tuple[int, ...]] = {
    "Angry": (4, 5, 7, 23), "Disgust": (9, 10), "Fear": (1, 2, 4, 5, 7, 20, 26),
    "Happy": (6, 12), "Sad": (1, 4, 15), "Surprise": (1, 2, 5, 26), "Neutral": ()}
#: AUs that join the prototype with probability ``config.p_optional`` (EMFACS variants).
EXPRESSION_OPTIONAL_AUS: dict[str, tuple[int, ...]] = {
    "Angry": (24, 17), "Disgust": (15, 17), "Fear": (25,), "Happy": (25,), "Sad": (17,),
    "Surprise": (25,), "Neutral": ()}

#: RAF-DB basic training counts in canonical order (Angry, Disgust, Fear, Happy, Sad,
#: Surprise, Neutral); reference-facts "Datasets".
RAFDB_TRAIN_COUNTS: tuple[int, ...] = (705, 717, 281, 4772, 1982, 1290, 2524)

#: named nuisance conditions of a SynthFACS split (pose, occlusion, light, noise)
CONDITIONS = ("default", "frontal", "profile", "occluded", "unoccluded", "dim", "clean")

#: per-face identity parameters (face shape, skin, features) a rendered face takes
IDENTITY_FIELDS = (
    "face_a", "face_b", "face_cy", "skin", "hair", "hair_alpha", "hairline", "brow_y",
    "brow_gap", "brow_len", "brow_arch", "brow_thick", "brow_dark", "eye_x", "eye_y", "eye_w",
    "eye_h", "iris", "nose_y", "mouth_y", "mouth_w", "mouth_curve", "lip_u", "lip_l",
    "lip_dark", "fold")
# (low, high) of each identity field at identity_strength 1; the mean identity is the midpoint.
_IDENTITY_RANGES = {
    "face_a": (0.66, 0.80), "face_b": (0.86, 0.98), "face_cy": (0.02, 0.09),
    "skin": (0.42, 0.82), "hair": (0.04, 0.40), "hair_alpha": (0.0, 1.0),
    "hairline": (-0.66, -0.50), "brow_y": (-0.42, -0.32), "brow_gap": (0.05, 0.10),
    "brow_len": (0.26, 0.36), "brow_arch": (0.01, 0.06), "brow_thick": (0.028, 0.048),
    "brow_dark": (0.20, 0.50), "eye_x": (0.25, 0.32), "eye_y": (-0.20, -0.12),
    "eye_w": (0.105, 0.135), "eye_h": (0.042, 0.060), "iris": (0.05, 0.35),
    "nose_y": (0.16, 0.26), "mouth_y": (0.44, 0.54), "mouth_w": (0.19, 0.26),
    "mouth_curve": (-0.015, 0.015), "lip_u": (0.024, 0.040), "lip_l": (0.032, 0.052),
    "lip_dark": (0.10, 0.26), "fold": (0.01, 0.06)}

#: per-image nuisance parameters (pose angles, light, occlusion, blur, noise)
NUISANCE_FIELDS = (
    "roll", "yaw", "tx", "ty", "scale", "background", "gain", "grad_x", "grad_y", "occlusion",
    "hand_x", "hand_y", "hand_a", "hand_b", "hand_tone", "blur", "noise", "noise_seed")
_OCC_NAMES = ("none", "glasses", "sunglasses", "hand")


@dataclass
class SynthFACSConfig:
    """Knobs of the generator. Defaults are the calibrated benchmark (notebooks/01_data,
    "How hard is SynthFACS?"); ``strength`` fields scale a whole nuisance (0 turns it off).

    Expression: each non-neutral face has an apex strength ~ U(``intensity``) and each active
    AU that strength plus U(-``au_jitter``, ``au_jitter``), clipped to [0.05, 1]. A prototype AU
    is missing with probability ``p_drop_au``; an optional AU joins with ``p_optional``; with
    probability ``p_extra_au`` one random other AU is added at U(``extra_intensity``).
    """

    size: int = 48
    imbalance: str | tuple[int, ...] = "rafdb"   # "rafdb", "balanced" or per-class counts
    # expression
    intensity: tuple[float, float] = (0.3, 1.0)
    au_jitter: float = 0.2
    p_drop_au: float = 0.15
    p_optional: float = 0.4
    p_extra_au: float = 0.25
    extra_intensity: tuple[float, float] = (0.1, 0.5)
    expression_scale: float = 1.0          # multiplies every AU's geometric effect
    # identity
    identities_train: int = 400
    identities_eval: int = 100             # per evaluation split (val, test), disjoint ids
    identity_strength: float = 1.0
    # pose (degrees)
    max_roll: float = 15.0
    max_yaw: float = 35.0
    profile_yaw: float = 50.0
    zoom: float = 1.12                     # face scale in the frame (FER2013 crops are tight)
    jitter: float = 0.05                   # translation (face units); scale jitter is 0.6 of it
    # illumination
    illumination_strength: float = 0.4     # max gradient amplitude across the face
    gain: tuple[float, float] = (0.7, 1.15)
    dim_gain: tuple[float, float] = (0.3, 0.45)
    # occlusion
    p_occlusion: float = 0.12
    occlusion_mix: tuple[float, float, float] = (0.4, 0.25, 0.35)  # glasses, sunglasses, hand
    # sensor
    blur: float = 0.6                      # max mixing weight of a binomial blur
    noise: tuple[float, float] = (0.005, 0.04)

    def __post_init__(self):
        if int(self.size) < 8:
            raise ValueError(f"SynthFACSConfig.size must be >= 8, got {self.size}")
        for name in ("intensity", "extra_intensity", "gain", "dim_gain", "noise"):
            lo, hi = getattr(self, name)
            if not (0 <= lo <= hi):
                raise ValueError(f"SynthFACSConfig.{name} must be (low, high) with 0 <= low <= high, "
                                 f"got {getattr(self, name)}")
        for name in ("p_drop_au", "p_optional", "p_extra_au", "p_occlusion"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"SynthFACSConfig.{name} must be a probability, got {getattr(self, name)}")
        if len(self.occlusion_mix) != 3 or min(self.occlusion_mix) < 0 or sum(self.occlusion_mix) <= 0:
            raise ValueError(f"SynthFACSConfig.occlusion_mix must be 3 non-negative weights, "
                             f"got {self.occlusion_mix}")
        if self.identities_train < 1 or self.identities_eval < 1:
            raise ValueError("SynthFACSConfig.identities_train and identities_eval must be >= 1")

    def replace(self, **changes) -> "SynthFACSConfig":
        return replace(self, **changes)


# ----------------------------------------------------------------------------------------
# counter-based hashing (splitmix64) for identity parameters and sensor noise
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hash_uniform(seed: int, keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) float64, a pure function of (seed, key, stream)."""
    base = _mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
                  + np.array([stream + 1], dtype=np.uint64) * _GOLDEN)
    z = _mix64(base + (np.asarray(keys, dtype=np.uint64) + np.uint64(1)) * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _sin_cos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos by Taylor polynomials (|x| <= pi/2, error < 4e-6 at pi/2): arithmetic only,
    so the result is the same on every machine (libm and SIMD sines are not)."""
    x = np.asarray(x, dtype=np.float64)
    x2 = x * x
    s = x * (1 - x2 / 6 * (1 - x2 / 20 * (1 - x2 / 42 * (1 - x2 / 72 * (1 - x2 / 110)))))
    c = 1 - x2 / 2 * (1 - x2 / 12 * (1 - x2 / 30 * (1 - x2 / 56 * (1 - x2 / 90 * (1 - x2 / 132)))))
    return s, c


# ----------------------------------------------------------------------------------------
# sampling of AUs, identities and nuisances
def au_vector(aus: dict | None = None, **named) -> np.ndarray:
    """AU intensities as a (16,) float32 vector in :data:`AU_LIST` order from ``{au: value}``
    or keywords ``AU12=0.8``."""
    v = np.zeros(len(AU_LIST), dtype=np.float32)
    items = dict(aus or {})
    for k, val in named.items():
        if not k.upper().startswith("AU"):
            raise ValueError(f"au_vector: keyword {k!r} is not of the form AU<number>")
        items[int(k[2:])] = val
    for au, val in items.items():
        if int(au) not in _AU_COL:
            raise ValueError(f"au_vector: AU{au} is not modelled; choose from {AU_LIST}")
        v[_AU_COL[int(au)]] = val
    return v


def class_counts_for(n: int, imbalance="rafdb", num_classes: int = 7) -> np.ndarray:
    """Per-class counts summing to ``n``: "rafdb" (RAF-DB train proportions, largest-remainder
    rounding), "balanced", or explicit proportions/counts (scaled to ``n``)."""
    if isinstance(imbalance, str):
        if imbalance == "rafdb":
            w = np.asarray(RAFDB_TRAIN_COUNTS, dtype=np.float64)
        elif imbalance == "balanced":
            w = np.ones(num_classes)
        else:
            raise ValueError(f"imbalance must be 'rafdb', 'balanced' or per-class counts, got {imbalance!r}")
    else:
        w = np.asarray(imbalance, dtype=np.float64)
        if w.shape != (num_classes,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"imbalance counts must be {num_classes} non-negative numbers, got {imbalance!r}")
    if n < 0:
        raise ValueError(f"number of samples must be >= 0, got {n}")
    exact = w / w.sum() * n
    counts = np.floor(exact).astype(np.int64)
    rest = n - counts.sum()
    order = np.lexsort((np.arange(num_classes), -(exact - counts)))  # largest remainder, ties by index
    counts[order[:rest]] += 1
    return counts


def sample_aus(rng: np.random.Generator, labels: np.ndarray, config: SynthFACSConfig | None = None) -> np.ndarray:
    """AU intensities (N, 16) float32 for class labels in BASIC7 order (see module doc)."""
    cfg = config or SynthFACSConfig()
    labels = np.asarray(labels, dtype=np.int64)
    n, k = len(labels), len(AU_LIST)
    proto = np.zeros((7, k), bool)
    optional = np.zeros((7, k), bool)
    for c, name in enumerate(BASIC7):
        for au in EXPRESSION_AUS[name]:
            proto[c, _AU_COL[au]] = True
        for au in EXPRESSION_OPTIONAL_AUS[name]:
            optional[c, _AU_COL[au]] = True
    # fixed draw order: strength, jitter, drop, optional, extra flag, extra AU, extra intensity
    strength = rng.uniform(*cfg.intensity, size=(n, 1))
    jitter = rng.uniform(-cfg.au_jitter, cfg.au_jitter, size=(n, k))
    drop = rng.random((n, k)) < cfg.p_drop_au
    opt = rng.random((n, k)) < cfg.p_optional
    extra_flag = rng.random(n) < cfg.p_extra_au
    extra_au = rng.integers(0, k, size=n)
    extra_val = rng.uniform(*cfg.extra_intensity, size=n)

    p = proto[labels]
    active = p & ~drop
    lost = p.any(1) & ~active.any(1)
    active[lost] = p[lost]                       # never drop every prototype AU
    active |= optional[labels] & opt
    au = np.where(active, np.clip(strength + jitter, 0.05, 1.0), 0.0)
    rows = np.flatnonzero(extra_flag & ~active[np.arange(n), extra_au])
    au[rows, extra_au[rows]] = extra_val[rows]
    return au.astype(np.float32)


def sample_identities(ids: np.ndarray, seed: int = 0, config: SynthFACSConfig | None = None) -> dict[str, np.ndarray]:
    """Identity parameters (dict of (N,) float64) as a pure function of (seed, identity id):
    the same id looks the same in every split and every call."""
    cfg = config or SynthFACSConfig()
    ids = np.asarray(ids, dtype=np.int64)
    out = {}
    for j, name in enumerate(IDENTITY_FIELDS):
        lo, hi = _IDENTITY_RANGES[name]
        u = _hash_uniform(seed, ids, 1000 + j)
        mid = (lo + hi) / 2
        out[name] = mid + (u - 0.5) * (hi - lo) * cfg.identity_strength
    # about one identity in six is bald (hair invisible)
    out["hair_alpha"] = (_hash_uniform(seed, ids, 999) > 1 / 6).astype(np.float64) * min(1.0, cfg.identity_strength)
    return out


def _mean_identity(n: int) -> dict[str, np.ndarray]:
    d = {k: np.full(n, (lo + hi) / 2) for k, (lo, hi) in _IDENTITY_RANGES.items()}
    d["hair_alpha"] = np.ones(n)
    return d


def _default_nuisance(n: int) -> dict[str, np.ndarray]:
    z = np.zeros(n)
    return {"roll": z, "yaw": z, "tx": z, "ty": z, "scale": np.ones(n), "background": np.full(n, 0.3),
            "gain": np.ones(n), "grad_x": z, "grad_y": z, "occlusion": np.zeros(n, np.int64),
            "hand_x": z, "hand_y": z, "hand_a": np.full(n, 0.3), "hand_b": np.full(n, 0.3),
            "hand_tone": np.full(n, 0.6), "blur": z, "noise": z, "noise_seed": np.zeros(n, np.uint64)}


def sample_nuisance(rng: np.random.Generator, n: int, config: SynthFACSConfig | None = None,
                    condition: str = "default") -> dict[str, np.ndarray]:
    """Pose, illumination, occlusion, blur and noise for ``n`` samples.

    Every draw happens in the same order whatever the ``condition``, which then overrides one
    factor: "frontal" (roll = yaw = 0), "profile" (abs(yaw) = ``profile_yaw``), "occluded"
    (always an occluder), "unoccluded", "dim" (gain from ``dim_gain``, full gradient),
    "clean" (frontal, even light, no occluder, no blur, faint noise). So a test set rendered
    under another condition shows the same faces with one factor changed.
    """
    cfg = config or SynthFACSConfig()
    if condition not in CONDITIONS:
        raise ValueError(f"unknown SynthFACS condition {condition!r}: choose one of {', '.join(CONDITIONS)}")
    u = lambda lo, hi: rng.uniform(lo, hi, size=n)  # noqa: E731
    d = {}
    d["roll"] = u(-1, 1) * cfg.max_roll
    d["yaw"] = np.clip(rng.normal(0, 0.5, size=n), -1, 1) * cfg.max_yaw
    d["tx"] = u(-1, 1) * cfg.jitter
    d["ty"] = u(-1, 1) * cfg.jitter
    d["scale"] = cfg.zoom * (1 + u(-0.5, 0.5) * cfg.jitter * 1.2)
    d["background"] = u(0.05, 0.95)
    d["gain"] = u(*cfg.gain)
    dim_gain = u(*cfg.dim_gain)
    g = rng.normal(size=(n, 2))
    g = g / np.sqrt((g ** 2).sum(1, keepdims=True) + 1e-12)
    amp = u(0, 1) * cfg.illumination_strength
    d["grad_x"], d["grad_y"] = g[:, 0] * amp, g[:, 1] * amp
    occ_flag = rng.random(n) < cfg.p_occlusion
    mix = np.asarray(cfg.occlusion_mix, dtype=np.float64)
    occ_type = 1 + np.searchsorted(np.cumsum(mix / mix.sum())[:-1], rng.random(n), side="right")
    d["hand_x"] = u(-0.55, 0.55)
    d["hand_y"] = u(0.0, 0.75)
    d["hand_a"] = u(0.22, 0.40)
    d["hand_b"] = u(0.20, 0.35)
    d["hand_tone"] = u(0.35, 0.85)
    d["blur"] = u(0, 1) * cfg.blur
    d["noise"] = u(*cfg.noise)
    d["noise_seed"] = rng.integers(0, 2 ** 63, size=n, dtype=np.uint64)
    yaw_sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    d["occlusion"] = np.where(occ_flag, occ_type, 0).astype(np.int64)

    if condition in ("frontal", "clean"):
        d["roll"] = np.zeros(n)
        d["yaw"] = np.zeros(n)
    if condition == "profile":
        d["yaw"] = yaw_sign * cfg.profile_yaw
    if condition == "occluded":
        d["occlusion"] = occ_type.astype(np.int64)
    if condition in ("unoccluded", "clean"):
        d["occlusion"] = np.zeros(n, np.int64)
    if condition == "dim":
        d["gain"] = dim_gain
        d["grad_x"], d["grad_y"] = g[:, 0] * cfg.illumination_strength, g[:, 1] * cfg.illumination_strength
    if condition == "clean":
        d["gain"] = np.ones(n)
        d["grad_x"] = np.zeros(n)
        d["grad_y"] = np.zeros(n)
        d["blur"] = np.zeros(n)
        d["noise"] = np.full(n, 0.005)
    return d


# ----------------------------------------------------------------------------------------
# rendering
def _geometry(au: np.ndarray, ident: dict, nuis: dict, scale_expr: float) -> dict[str, np.ndarray]:
    """Per-sample shape parameters (float64 (B,)) from AUs, identity and nuisance."""
    a = {k: au[:, _AU_COL[k]].astype(np.float64) * scale_expr for k in AU_LIST}
    g = {}
    # brows
    g["t_in"] = ident["brow_gap"] - 0.035 * a[4]
    g["t_out"] = g["t_in"] + ident["brow_len"]
    g["v_in"] = ident["brow_y"] - 0.13 * a[1] + 0.11 * a[4] + 0.07 * a[9]
    g["v_out"] = ident["brow_y"] - 0.12 * a[2] + 0.03 * a[4] + 0.02 * a[9]
    g["arch"] = ident["brow_arch"] + 0.035 * a[2] - 0.02 * a[4]
    g["brow_thick"] = ident["brow_thick"]
    g["brow_dark"] = ident["brow_dark"]
    g["wrinkle"] = 0.10 * np.maximum(a[1], a[2])
    g["wrinkle_w"] = 0.08 + 0.16 * a[2]
    g["glabella"] = 0.2 * a[4]
    # eyes
    g["ex"], g["ey"], g["ew"] = ident["eye_x"], ident["eye_y"], ident["eye_w"]
    h = ident["eye_h"]
    g["h_up"] = np.maximum(h * (1 + 1.0 * a[5] - 0.45 * a[7] - 0.25 * a[6]), 0.004)
    g["h_lo"] = np.maximum(0.75 * h * (1 + 0.3 * a[5] - 0.65 * a[7] - 0.7 * a[6]), 0.003)
    g["ri"] = 0.42 * ident["eye_w"]
    g["iris"] = ident["iris"]
    g["crease"] = 0.14 * a[6] + 0.07 * a[7]
    g["cheek"] = 0.09 * a[6] + 0.04 * a[12]
    g["cheek_y"] = ident["eye_y"] + 0.27 - 0.07 * a[6]
    g["crow"] = 0.14 * a[6]
    # nose
    g["nose_y"] = ident["nose_y"] - 0.04 * a[9] - 0.025 * a[10]
    g["nx"] = 0.065 + 0.015 * a[9]
    g["nose_wr"] = 0.32 * a[9]
    # mouth
    g["m_y"] = ident["mouth_y"] + 0.03 * a[26] - 0.012 * a[10]
    g["mw"] = ident["mouth_w"] * np.maximum(
        1 + 0.32 * a[12] + 0.40 * a[20] - 0.18 * a[23] - 0.12 * a[24] - 0.05 * a[15] - 0.05 * a[10], 0.4)
    g["corner"] = ident["mouth_curve"] - 0.11 * a[12] + 0.09 * a[15] + 0.025 * a[20] + 0.02 * a[17]
    thin = np.maximum(1 - 0.6 * a[23] - 0.6 * a[24] - 0.2 * a[20], 0.15)
    g["tu"] = ident["lip_u"] * thin + 0.008 * a[10]
    g["tl"] = ident["lip_l"] * thin + 0.012 * a[17]
    g["o_up"] = 0.012 * a[25] + 0.035 * a[10] * np.minimum(1, a[25] + a[12] + 0.3) + 0.012 * a[12] * a[25]
    g["o_lo"] = np.maximum(0.012 * a[25] + 0.17 * a[26] - 0.015 * a[17], 0)
    g["lo_shift"] = -0.015 * a[17]
    g["lip_dark"] = ident["lip_dark"] * (1 + 0.4 * np.maximum(a[23], a[24]))
    g["chin"] = 0.14 * a[17] + 0.04 * a[15]
    g["fold"] = ident["fold"] + 0.16 * a[10] + 0.11 * a[12] + 0.06 * a[9] + 0.04 * a[6] - 0.02 * a[20]
    # face
    g["face_a"], g["face_cy"] = ident["face_a"], ident["face_cy"]
    g["face_b"] = ident["face_b"]
    g["face_b_lo"] = ident["face_b"] + 0.07 * a[26]
    g["skin"], g["hair"], g["hair_alpha"] = ident["skin"], ident["hair"], ident["hair_alpha"]
    g["hairline"] = ident["hairline"]
    # pose: polynomial sin/cos (deterministic), yaw as foreshortening + depth shift
    sr, cr = _sin_cos(np.deg2rad(nuis["roll"]))
    sy, cy = _sin_cos(np.deg2rad(nuis["yaw"]))
    g["cos_r"], g["sin_r"] = cr, sr
    g["inv_cos_y"], g["tan_y"] = 1 / cy, sy / cy
    g["sil"] = 1 + 0.15 * (1 - cy)              # silhouette narrows a little with yaw
    g["shade_yaw"] = 0.25 * sy                  # far side darker
    for k in ("tx", "ty", "scale", "background", "gain", "grad_x", "grad_y", "blur", "noise",
              "hand_x", "hand_y", "hand_a", "hand_b", "hand_tone"):
        g[k] = np.asarray(nuis[k], dtype=np.float64)
    return g


def _fill(d, aa):
    """Soft inside-mask of a signed distance d (negative inside), ramp width aa."""
    return np.clip(0.5 - d / aa, 0.0, 1.0)


def _rows(g: dict, vlo, vhi, size: int) -> slice:
    """Image rows that can hold face-height range [vlo, vhi] for any sample of the chunk (a
    conservative band over roll, scale and shift; masks are exactly 0 outside it, so the bytes
    do not depend on how samples are chunked)."""
    s, c = np.abs(g["sin_r"]), g["cos_r"]
    pxmax = (1 + np.abs(g["tx"])) / g["scale"] + 0.1
    y0 = g["ty"] + g["scale"] * (np.asarray(vlo) - s * pxmax) / c
    y1 = g["ty"] + g["scale"] * (np.asarray(vhi) + s * pxmax) / c
    i0 = int(np.floor((y0.min() + 1) * size / 2 - 0.5)) - 1
    i1 = int(np.ceil((y1.max() + 1) * size / 2 - 0.5)) + 2
    return slice(min(max(i0, 0), size), min(max(i1, 0), size))


def _render_chunk(g: dict, occ: np.ndarray, noise_seed: np.ndarray, size: int) -> np.ndarray:
    f32 = np.float32
    B = len(occ)
    P = {k: np.asarray(v, dtype=f32).reshape(B, 1, 1) for k, v in g.items()}
    coords = ((np.arange(size, dtype=f32) + f32(0.5)) * f32(2.0 / size) - f32(1.0))
    X = coords.reshape(1, 1, size)
    Y = coords.reshape(1, size, 1)
    aa = f32(2.0 / size) / P["scale"]                       # one pixel in face units (B,1,1)

    px = (X - P["tx"]) / P["scale"]                         # (B,1,W)
    py = (Y - P["ty"]) / P["scale"]                         # (B,H,1)
    XR = P["cos_r"] * px + P["sin_r"] * py                  # (B,H,W) roll
    V = P["cos_r"] * py - P["sin_r"] * px                   # (B,H,W)

    # --- background, face, hair -------------------------------------------------------
    img = np.broadcast_to(P["background"], (B, size, size)).astype(f32)
    uf = XR * P["sil"]
    dyf = V - P["face_cy"]
    bf = np.where(dyf > 0, P["face_b_lo"], P["face_b"])
    r2 = (uf / P["face_a"]) ** 2 + (dyf / bf) ** 2
    r = np.sqrt(r2)
    face = _fill((r - 1) * P["face_a"], aa)
    skin = P["skin"] * (1 - f32(0.22) * r2 - P["shade_yaw"] * uf)
    img += face * (skin - img)
    hair_d = np.maximum((r - f32(1.07)) * P["face_a"], V - (P["hairline"] + f32(0.35) * uf * uf))
    img += (P["hair_alpha"] * _fill(hair_d, aa)) * (P["hair"] - img)
    del uf, dyf, bf, r2, r, skin, hair_d

    def band(vlo, vhi):
        sl = _rows(g, vlo, vhi, size)
        return sl, XR[:, sl], V[:, sl], img[:, sl]

    def u_at(xr, depth):                                    # yaw: foreshorten + shift by depth
        return xr * P["inv_cos_y"] - P["tan_y"] * f32(depth)

    # --- brows (folded: t = |u|), forehead lines (AU1/AU2), glabella lines (AU4) -----------
    sl, xr, v, im = band(np.minimum(g["v_in"] - 0.24, g["v_out"]) - np.abs(g["arch"]) - g["brow_thick"] - 0.03,
                         np.maximum(g["v_in"] + 0.1, g["v_out"] + g["brow_thick"]) + 0.03)
    t = np.abs(u_at(xr, 0.40))
    span = P["t_out"] - P["t_in"]
    p = (t - P["t_in"]) / span
    vc = P["v_in"] + (P["v_out"] - P["v_in"]) * p - f32(4.0) * P["arch"] * p * (1 - p)
    d = np.maximum(np.abs(v - vc) - P["brow_thick"] * (1 - f32(0.35) * p), (np.abs(p - f32(0.5)) - f32(0.5)) * span)
    im -= _fill(d, aa) * P["brow_dark"] * im
    fy = P["v_in"] - f32(0.12)
    d = np.maximum(np.minimum(np.abs(v - fy), np.abs(v - fy + f32(0.09))) - f32(0.012), t - P["wrinkle_w"])
    im -= _fill(d, aa) * P["wrinkle"] * im
    d = np.maximum(np.abs(t - f32(0.035)) - f32(0.01), np.abs(v - P["v_in"] - f32(0.03)) - f32(0.06))
    im -= _fill(d, aa) * P["glabella"] * im

    # --- eyes: lids, sclera, iris, lid crease (AU6/7), crow's feet (AU6) --------------------
    sl, xr, v, im = band(g["ey"] - g["h_up"] - 0.05, g["ey"] + g["h_lo"] + 0.1)
    t = np.abs(u_at(xr, 0.35))
    dx = t - P["ex"]
    q = np.minimum((dx / P["ew"]) ** 2, f32(1.0))
    dq = (np.abs(dx) - P["ew"])
    v_up = P["ey"] - P["h_up"] * (1 - q)
    v_lo = P["ey"] + P["h_lo"] * (1 - q)
    opening = _fill(np.maximum(np.maximum(v_up - v, v - v_lo), dq), aa)
    im += opening * (f32(0.8) - im)
    iris = _fill(np.sqrt(dx * dx + (v - P["ey"]) ** 2) - P["ri"], aa) * opening
    im += iris * (P["iris"] - im)
    lid = _fill(np.maximum(np.abs(v - v_up + f32(0.01)) - f32(0.012), dq), aa)
    im -= lid * f32(0.45) * im
    d = np.maximum(np.abs(v - v_lo - f32(0.045)) - f32(0.01), dq + f32(0.02))
    im -= _fill(d, aa) * P["crease"] * im
    d = np.maximum(np.abs(v - P["ey"] - f32(0.6) * (dx - P["ew"])) - f32(0.011),
                   np.abs(dx - P["ew"] - f32(0.06)) - f32(0.04))
    im -= _fill(d, aa) * P["crow"] * im

    # --- cheeks (AU6, AU12): brighter, higher ---------------------------------------------
    sl, xr, v, im = band(g["cheek_y"] - 0.16, g["cheek_y"] + 0.16)
    t = np.abs(u_at(xr, 0.35))
    d = np.sqrt(((t - P["ex"] - f32(0.03)) / f32(1.4)) ** 2 + (v - P["cheek_y"]) ** 2) - f32(0.09)
    im += _fill(d, f32(0.08)) * P["cheek"] * (1 - im)

    # --- nose: nostrils, side shadows, wrinkles (AU9) -----------------------------------------
    sl, xr, v, im = band(g["ey"] - 0.03, np.maximum(g["nose_y"], g["ey"] + 0.17) + 0.05)
    t = np.abs(u_at(xr, 0.60))
    d = np.sqrt(((t - P["nx"]) / f32(1.5)) ** 2 + (v - P["nose_y"]) ** 2) - f32(0.021)
    im -= _fill(d, aa) * f32(0.45) * im
    d = np.maximum(np.abs(t - f32(0.07)) - f32(0.012),
                   np.abs(v - (P["ey"] + P["nose_y"]) * f32(0.5)) - (P["nose_y"] - P["ey"]) * f32(0.4))
    im -= _fill(d, aa) * f32(0.08) * im
    d = np.maximum(np.minimum(np.abs(v - P["ey"] - f32(0.1)), np.abs(v - P["ey"] - f32(0.16))) - f32(0.011),
                   t - f32(0.09))
    im -= _fill(d, aa) * P["nose_wr"] * im

    # --- nasolabial folds: segment from beside the nostril to beyond the mouth corner ---------
    sl, xr, v, im = band(np.minimum(g["nose_y"] - 0.01, g["m_y"] + g["corner"] + 0.04) - 0.05,
                         np.maximum(g["nose_y"] - 0.01, g["m_y"] + g["corner"] + 0.04) + 0.05)
    t = np.abs(u_at(xr, 0.40))
    ax, ay = P["nx"] + f32(0.06), P["nose_y"] - f32(0.01)
    bx, by = P["mw"] + f32(0.05), P["m_y"] + P["corner"] + f32(0.04)
    ex_, ey_ = bx - ax, by - ay
    s = np.clip(((t - ax) * ex_ + (v - ay) * ey_) / (ex_ * ex_ + ey_ * ey_), 0, 1)
    d = np.sqrt((t - ax - s * ex_) ** 2 + (v - ay - s * ey_) ** 2) - f32(0.014)
    im -= _fill(d, aa) * P["fold"] * im

    # --- mouth: lips, opening, teeth, lip line --------------------------------------------------
    sl, xr, v, im = band(g["m_y"] + np.minimum(g["corner"], 0) - g["o_up"] - g["tu"] - 0.04,
                         g["m_y"] + np.maximum(g["corner"], 0) + g["o_lo"] + g["tl"] + 0.04)
    t = np.abs(u_at(xr, 0.40))
    qm = np.minimum((t / P["mw"]) ** 2, f32(1.0))
    dq = t - P["mw"]
    y0 = P["m_y"] + P["corner"] * qm
    w = 1 - qm
    y_ui = y0 - P["o_up"] * w
    y_li = y0 + P["o_lo"] * w + P["lo_shift"] * w
    y_uo = y_ui - P["tu"] * (1 - f32(0.7) * qm)
    y_lo = y_li + P["tl"] * (1 - f32(0.6) * qm)
    lips = _fill(np.maximum(np.maximum(y_uo - v, v - y_lo), dq), aa)
    im -= lips * P["lip_dark"] * im
    gap = _fill(np.maximum(np.maximum(y_ui - v, v - y_li), dq), aa)
    im += gap * (f32(0.1) - im)
    teeth = gap * _fill(v - y_ui - np.minimum(y_li - y_ui, f32(0.04)), aa)
    im += teeth * (f32(0.82) - im)
    line = _fill(np.maximum(np.abs(v - y0) - f32(0.011), dq), aa)
    im -= line * f32(0.3) * im

    # --- chin crease (AU17, AU15) ------------------------------------------------------------------
    cy_ = g["m_y"] + g["o_lo"] + g["tl"] + 0.1
    sl, xr, v, im = band(cy_ - 0.04, cy_ + 0.04)
    t = np.abs(u_at(xr, 0.40))
    d = np.maximum(np.abs(v - P["m_y"] - P["o_lo"] - P["tl"] - f32(0.1)) - f32(0.013), t - f32(0.11))
    im -= _fill(d, aa) * P["chin"] * im

    # --- occluders (only samples that have one) ------------------------------------------------
    for kind in (1, 2, 3):
        idx = np.flatnonzero(occ == kind)
        if not len(idx):
            continue
        sub = img[idx]
        a_ = aa[idx]
        if kind in (1, 2):                       # glasses frame (+ dark lenses), move with the face
            te = np.abs(u_at(XR, 0.45)[idx])
            vv = V[idx]
            gx = P["ex"][idx]
            gy = P["ey"][idx] + f32(0.01)
            ga = P["ew"][idx] + f32(0.07)
            rr = np.sqrt(((te - gx) / ga) ** 2 + ((vv - gy) / f32(0.12)) ** 2)
            if kind == 2:
                lens = _fill((rr - 1) * f32(0.12), a_)
                sub += lens * f32(0.9) * (f32(0.08) - sub)
            frame = _fill(np.abs(rr - 1) * f32(0.12) - f32(0.014), a_)
            bridge = _fill(np.maximum(np.abs(vv - gy + f32(0.03)) - f32(0.012), te - gx + ga), a_)
            arm = _fill(np.maximum(np.abs(vv - gy + f32(0.04)) - f32(0.012), gx + ga - te), a_) * face[idx]
            sub += np.maximum(np.maximum(frame, bridge), arm) * f32(0.9) * (f32(0.06) - sub)
        else:                                    # hand: palm ellipse with finger gaps, image coords
            hdx = X - P["hand_x"][idx]
            hdy = Y - P["hand_y"][idx]
            rr = np.sqrt((hdx / P["hand_a"][idx]) ** 2 + (hdy / P["hand_b"][idx]) ** 2)
            palm = _fill((rr - 1) * P["hand_b"][idx], a_)
            tone = P["hand_tone"][idx] * (1 - f32(0.25) * rr * rr)
            fr = hdx / f32(0.11)
            gapd = np.abs(fr - np.floor(fr) - f32(0.5)) * f32(0.11) - f32(0.008)
            fingers = _fill(gapd, a_) * _fill(hdy + f32(0.05), a_)
            sub += palm * (tone * (1 - f32(0.35) * fingers) - sub)
        img[idx] = sub

    # --- illumination, blur, sensor noise --------------------------------------------------
    img *= P["gain"] * (1 + P["grad_x"] * X + P["grad_y"] * Y)
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    bl = pad[:, :-2] + f32(2) * pad[:, 1:-1] + pad[:, 2:]
    bl = (bl[:, :, :-2] + f32(2) * bl[:, :, 1:-1] + bl[:, :, 2:]) * f32(1 / 16)
    img += P["blur"] * (bl - img)
    if np.any(g["noise"] > 0):
        img += P["noise"] * _noise(noise_seed, size * size).reshape(B, size, size)
    return (np.clip(img, 0, 1) * f32(255) + f32(0.5)).astype(np.uint8)


_NOISE_BITS = 16
_NOISE_TABLE: np.ndarray | None = None


def _noise(seeds: np.ndarray, n_pix: int) -> np.ndarray:
    """Approximately N(0, 1) float32 (B, n_pix) sensor noise, a pure function of (seed, pixel).

    A fixed table of 2^16 normals (sum of four 16-bit uniforms of a splitmix64 hash, scaled to
    unit variance) is read along a per-sample arithmetic progression (offset, odd stride): cheap
    and independent of batching.
    """
    global _NOISE_TABLE
    mask = (1 << _NOISE_BITS) - 1
    if _NOISE_TABLE is None:
        z = _mix64((np.arange(1 << _NOISE_BITS, dtype=np.uint64) + np.uint64(1)) * _GOLDEN)
        m = np.uint64(0xFFFF)
        s = ((z & m).astype(np.float64) + ((z >> np.uint64(16)) & m) + ((z >> np.uint64(32)) & m)
             + (z >> np.uint64(48)))
        _NOISE_TABLE = ((s / 65536.0 - 2.0) * np.sqrt(3.0)).astype(np.float32)
    seeds = np.asarray(seeds, dtype=np.uint64)
    offset = (seeds & np.uint64(mask)).astype(np.int64)[:, None]
    stride = (((seeds >> np.uint64(16)) & np.uint64(mask)) | np.uint64(1)).astype(np.int64)[:, None]
    idx = (offset + np.arange(n_pix, dtype=np.int64)[None, :] * stride) & mask
    return _NOISE_TABLE[idx]


def render_faces(au, identity: dict | None = None, nuisance: dict | None = None, size: int = 48,
                 config: SynthFACSConfig | None = None, chunk_size: int = 256,
                 progress: bool = False) -> np.ndarray:
    """Render faces from AU intensities.

    Parameters
    ----------
    au : (N, 16) array in :data:`AU_LIST` order, values in [0, 1].
    identity : dict of (N,) arrays with the :data:`IDENTITY_FIELDS` (e.g. from
        :func:`sample_identities`); missing fields take the mean identity.
    nuisance : dict of (N,) arrays with the :data:`NUISANCE_FIELDS` (e.g. from
        :func:`sample_nuisance`; angles in degrees, ``occlusion`` 0 none, 1 glasses,
        2 sunglasses, 3 hand); missing fields are frontal, evenly lit, unoccluded, sharp, noiseless.
    size : image side in pixels.

    Returns uint8 (N, size, size). Bytes do not depend on ``chunk_size``.
    """
    au = np.asarray(au, dtype=np.float32)
    if au.ndim == 1:
        au = au[None]
    if au.ndim != 2 or au.shape[1] != len(AU_LIST):
        raise ValueError(f"render_faces: au must be (N, {len(AU_LIST)}) in AU_LIST order {AU_LIST}, "
                         f"got shape {au.shape}")
    if not np.isfinite(au).all():
        raise ValueError("render_faces: au contains NaN or inf")
    size = int(size)
    if size < 8:
        raise ValueError(f"render_faces: size must be >= 8, got {size}")
    cfg = config or SynthFACSConfig()
    n = len(au)
    ident = _mean_identity(n)
    for k, val in (identity or {}).items():
        if k not in ident:
            raise ValueError(f"render_faces: unknown identity field {k!r}; known: {', '.join(IDENTITY_FIELDS)}")
        ident[k] = np.broadcast_to(np.asarray(val, dtype=np.float64), (n,))
    nuis = _default_nuisance(n)
    for k, val in (nuisance or {}).items():
        if k not in nuis:
            raise ValueError(f"render_faces: unknown nuisance field {k!r}; known: {', '.join(NUISANCE_FIELDS)}")
        nuis[k] = np.broadcast_to(np.asarray(val, dtype=nuis[k].dtype), (n,))
    g = _geometry(au, ident, nuis, cfg.expression_scale)
    occ = np.asarray(nuis["occlusion"], dtype=np.int64)
    seeds = np.asarray(nuis["noise_seed"], dtype=np.uint64)
    out = np.empty((n, size, size), dtype=np.uint8)
    from tqdm.auto import tqdm
    for start in tqdm(range(0, n, chunk_size), disable=not progress, desc="SynthFACS", leave=False):
        sl = slice(start, start + chunk_size)
        out[sl] = _render_chunk({k: v[sl] for k, v in g.items()}, occ[sl], seeds[sl], size)
    return out


def render_face(au=None, identity: dict | None = None, size: int = 48, **nuisance) -> np.ndarray:
    """One face (uint8 (size, size)) from ``au`` ((16,) vector or {au: intensity} dict); identity
    fields and nuisance fields (``yaw=30``, ``occlusion=1``...) as scalars."""
    vec = au_vector(au) if (au is None or isinstance(au, dict)) else np.asarray(au, dtype=np.float32)
    ident = None if identity is None else {k: np.atleast_1d(v) for k, v in identity.items()}
    nuis = {k: np.atleast_1d(v) for k, v in nuisance.items()}
    return render_faces(vec[None], ident, nuis, size=size)[0]


# ----------------------------------------------------------------------------------------
# datasets
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3, "pairs": 4}


def _identity_range(split: str, cfg: SynthFACSConfig) -> tuple[int, int]:
    if split in ("train", "pairs"):
        return 0, cfg.identities_train
    k = 0 if split == "val" else 1
    lo = cfg.identities_train + k * cfg.identities_eval
    return lo, lo + cfg.identities_eval


def make_synthfacs_split(n: int, seed: int = 0, size: int | None = None,
                         config: SynthFACSConfig | None = None, split: str = "test",
                         condition: str = "default", imbalance=None,
                         progress: bool = False) -> FaceDataset:
    """One SynthFACS split of ``n`` faces.

    ``imbalance`` defaults to ``config.imbalance`` for "train" and "balanced" otherwise.
    ``condition`` (see :data:`CONDITIONS`) renders the *same* faces with one nuisance
    changed, for ablations (notebooks/01_data, "Nuisance factors"). Identities of
    train, val and test are disjoint.
    """
    cfg = config or SynthFACSConfig()
    size = int(size or cfg.size)
    if split not in _SPLIT_CODE:
        raise ValueError(f"unknown SynthFACS split {split!r}: choose one of {', '.join(_SPLIT_CODE)}")
    if imbalance is None:
        imbalance = cfg.imbalance if split == "train" else "balanced"
    counts = class_counts_for(int(n), imbalance)
    rng = np.random.default_rng([int(seed), _SPLIT_CODE[split]])
    labels = rng.permutation(np.repeat(np.arange(7), counts))
    au = sample_aus(rng, labels, cfg)
    lo, hi = _identity_range(split, cfg)
    ids = rng.integers(lo, hi, size=len(labels))
    nuis = sample_nuisance(rng, len(labels), cfg, condition)
    ident = sample_identities(ids, seed, cfg)
    images = render_faces(au, ident, nuis, size=size, config=cfg, progress=progress)
    extras = {
        "au": au,
        "identity": ids.astype(np.int64),
        "pose": np.stack([nuis["roll"], nuis["yaw"]], 1).astype(np.float32),
        "occluded": nuis["occlusion"] > 0,
        "occlusion_type": nuis["occlusion"].astype(np.int8),
        "illumination": nuis["gain"].astype(np.float32),
        "blur": nuis["blur"].astype(np.float32),
        "noise": nuis["noise"].astype(np.float32),
    }
    return FaceDataset(images, labels, BASIC7, name="synthfacs", split=split, extras=extras)


def make_synthfacs(n_train: int, n_test: int, seed: int = 0, size: int = 48,
                   config: SynthFACSConfig | None = None, imbalance=None,
                   test_condition: str = "default", progress: bool = False) -> dict[str, FaceDataset]:
    """The SynthFACS benchmark: ``dict(train=, val=, test=)`` of :class:`FaceDataset`.

    Train follows RAF-DB's class proportions scaled to ``n_train`` (or ``imbalance``); val and
    test are balanced with ``n_test`` faces each and unseen identities. ``test_condition``
    renders the test split under a nuisance condition (:data:`CONDITIONS`).
    """
    cfg = config or SynthFACSConfig()
    kw = dict(seed=seed, size=size, config=cfg, progress=progress)
    return {
        "train": make_synthfacs_split(n_train, split="train", imbalance=imbalance, **kw),
        "val": make_synthfacs_split(n_test, split="val", **kw),
        "test": make_synthfacs_split(n_test, split="test", condition=test_condition, **kw),
    }


def make_identity_pairs(n_pairs: int, seed: int = 0, size: int = 48,
                        config: SynthFACSConfig | None = None, split: str = "pairs",
                        imbalance="balanced", progress: bool = False) -> tuple[FaceDataset, FaceDataset]:
    """Same-identity, same-expression (frontal, profile) pairs for EAN's invariant generator
    (notebooks/05, "Invariant features").

    Returns two aligned :class:`FaceDataset` (``frontal[i]`` and ``profile[i]`` show the same
    identity with the same AUs, light, occluder and noise; frontal has roll = yaw = 0, profile
    abs(yaw) = ``config.profile_yaw``). Identities come from the training pool by default.
    """
    cfg = config or SynthFACSConfig()
    counts = class_counts_for(int(n_pairs), imbalance)
    rng = np.random.default_rng([int(seed), _SPLIT_CODE["pairs"] if split == "pairs" else _SPLIT_CODE[split] + 10])
    labels = rng.permutation(np.repeat(np.arange(7), counts))
    au = sample_aus(rng, labels, cfg)
    lo, hi = _identity_range(split, cfg)
    ids = rng.integers(lo, hi, size=len(labels))
    ident = sample_identities(ids, seed, cfg)
    state = rng.bit_generator.state
    out = []
    for cond in ("frontal", "profile"):
        rng.bit_generator.state = state           # identical draws; only the pose differs
        nuis = sample_nuisance(rng, len(labels), cfg, cond)
        images = render_faces(au, ident, nuis, size=size, config=cfg, progress=progress)
        out.append(FaceDataset(images, labels, BASIC7, name="synthfacs", split=f"pairs_{cond}", extras={
            "au": au, "identity": ids.astype(np.int64),
            "pose": np.stack([nuis["roll"], nuis["yaw"]], 1).astype(np.float32),
            "occluded": nuis["occlusion"] > 0, "illumination": nuis["gain"].astype(np.float32)}))
    return out[0], out[1]


make_pairs = make_identity_pairs
