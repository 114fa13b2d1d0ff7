"""Checkpoint files that cannot run code and cannot be half-written (issue 14).

Every checkpoint ferlib reads goes through :func:`load_checkpoint_file`, which calls
``torch.load(..., weights_only=True)``: only tensors and plain data (dicts, lists, tuples,
strings, numbers, None) are unpickled, so a crafted file cannot run code on loading. A file
holding anything else, or one that is truncated or not a torch file at all, is a
:class:`CheckpointError` that names the file. Configurations are stored as plain dicts beside
the tensors, never as pickled objects.

Every checkpoint ferlib writes goes through :func:`save_atomic`: the state is written to a
temporary file in the same folder, flushed and ``fsync``-ed, then renamed over the target
(``os.replace``, atomic on POSIX) and the folder entry is synced too. A process killed at any
moment (SIGKILL, power loss) leaves either the previous complete file or the new complete one,
never a half-written file under the real name. Temporary files left by a killed writer are
removed by the next successful save.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

__all__ = ["CheckpointError", "load_checkpoint_file", "save_atomic", "write_atomic"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded safely (names the file)."""


def load_checkpoint_file(path, what: str = "checkpoint", map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with errors that name ``path``.

    ``what`` names the kind of file in messages ("VAE-GAN checkpoint", "backbone file").
    Raises FileNotFoundError when there is no file, :class:`CheckpointError` when it holds
    objects other than tensors and plain data (refused, nothing is executed) or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "GLOBAL" in ln or "global" in ln), None)
        if detail is None:   # not an object torch refused: the bytes are not a valid pickle
            detail = next((ln for ln in lines if "Unsupported" in ln or "load key" in ln),
                          lines[-1] if lines else type(exc).__name__)
            raise CheckpointError(f"cannot read {what} {path} ({detail}); the file is damaged or "
                                  "not a torch checkpoint: delete it to start again") from None
        raise CheckpointError(
            f"{what} {path} was refused: it holds objects other than tensors and plain data "
            f"(dicts, lists, numbers, strings), which ferlib never unpickles because unpickling "
            f"them can run code. Only load files you or ferlib wrote (a file written by an "
            f"older ferlib that pickled other objects must be deleted and made again). "
            f"torch: {detail}") from None
    except Exception as exc:  # noqa: BLE001 - truncated, empty, not a torch file...
        first = (str(exc).strip().splitlines() or ["empty or truncated file"])[0]
        raise CheckpointError(f"cannot read {what} {path} ({type(exc).__name__}: {first}); the "
                              "file is damaged or not a torch checkpoint: delete it to start "
                              "again") from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def write_atomic(path, write, *, text: bool = False) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, flush and fsync it, then rename it
    over ``path``: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = path.name + ".tmp"
    tmp = path.with_name(f"{prefix}{os.getpid()}")
    try:
        with open(tmp, "w" if text else "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    for stale in path.parent.glob(f"{prefix}*"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    return path


def save_atomic(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically and durably (see the module docstring)."""
    return write_atomic(path, lambda f: torch.save(obj, f))
