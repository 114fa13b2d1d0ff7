"""Files of a package from the npm registry, through the ordinary client (``npm pack``).

The site serves MathJax from a local copy (:mod:`ferlib.book`) and the site check mirrors the
widget manager's CDN files (:mod:`ferlib.book.sitecheck`); both take them from the npm registry at a
pinned version with :func:`npm_fetch`."""
from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path


class NpmError(RuntimeError):
    """``npm`` is missing, or ``npm pack`` failed (the message names the package)."""


def npm_fetch(spec: str, files: dict[str, str | Path], timeout: float = 300) -> None:
    """``npm pack SPEC`` and copy each ``files`` entry, a path inside the package (``es5``,
    ``dist/embed.js``; ``""`` for the whole package), to its destination (a folder is copied
    whole, a file as a file). Raises :class:`NpmError` when npm is missing or fails, or a path
    is not in the package."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmError(f"npm not found: cannot fetch {spec} from the npm registry")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NpmError(f"npm pack {spec} did not finish in {timeout:.0f} s") from None
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if run.returncode or tgz is None:
            raise NpmError(f"npm pack {spec} failed: {run.stderr.strip()[-300:]}")
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "package"
        for inner, dst in files.items():
            src, dst = package / inner, Path(dst)
            if not src.exists():
                raise NpmError(f"{spec} has no {inner!r}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
