"""Model files: a local cache folder first, a download from the model's public home otherwise.

Where a model file is looked up, in order:
1. ``$EPIGEO_MODELS/<group>/<file>`` and ``$EPIGEO_MODELS/<file>`` when the environment variable
   ``EPIGEO_MODELS`` names a folder (CI and the tests set it to ``../shared/data/models``);
2. the cache folder ``$XDG_CACHE_HOME/epigeo/models/<group>/<file>`` (``~/.cache/...``).

When neither holds it, :func:`model_path` downloads it into the cache (printing where from and
where to, and how to work offline instead), checks that it is a TFLite/ONNX file with the pinned
SHA-256, and moves it into place atomically; a failed download leaves nothing behind and raises
``ValueError`` naming the URL.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ModelFile", "MODELS", "cache_dir", "model_path", "download_model"]


@dataclass(frozen=True)
class ModelFile:
    """A model file: ``group`` (sub-folder), ``name`` (file name), ``url`` (public home),
    ``sha256`` (a download with another digest is refused; ``""``: not checked), ``license``."""

    group: str
    name: str
    url: str
    sha256: str
    license: str


MODELS = {
    "blazepose_detector": ModelFile(
        "blazepose", "pose_detection.tflite",
        "https://storage.googleapis.com/mediapipe-assets/pose_detection.tflite"
        "?generation=1678737489600422",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", "Apache-2.0"),
    "blazepose_landmarks_full": ModelFile(
        "blazepose", "pose_landmark_full.tflite",
        "https://storage.googleapis.com/mediapipe-assets/pose_landmark_full.tflite"
        "?generation=1661875894245786",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", "Apache-2.0"),
}
"""The files the ``blazepose`` backend needs (BlazePose "full", as in MediaPipe 0.10.21): the
versions (``generation``) and SHA-256 that MediaPipe's own build pins (its
``third_party/external_files.bzl``), which are the files this project was measured with."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/epigeo/models`` (default ``~/.cache/epigeo/models``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "epigeo" / "models"


def _candidates(m: ModelFile, cache: Path | None):
    out = []
    env = os.environ.get("EPIGEO_MODELS")
    if env:
        out += [Path(env) / m.group / m.name, Path(env) / m.name]
    out.append((cache or cache_dir()) / m.group / m.name)
    return out


def _looks_like_model(head: bytes, name: str) -> bool:
    if name.endswith(".tflite"):
        return len(head) >= 8 and head[4:8] == b"TFL3"
    return len(head) > 0


def download_model(m: ModelFile, dest: Path, *, url: str | None = None,
                   timeout: float = 60.0, quiet: bool = False) -> Path:
    """Download ``m`` from ``url`` (default ``m.url``) to ``dest`` atomically (a temporary file in
    the same folder, then ``os.replace``). Raises ``ValueError`` naming the URL when the server
    cannot be reached, answers an error, sends something that is not a model file, or a file
    whose SHA-256 is not ``m.sha256``."""
    url = url or m.url
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"epigeo: model {m.name} not found locally; downloading it from {url} to {dest} "
              f"(to work offline, set EPIGEO_MODELS to a folder holding {m.group}/{m.name})",
              file=sys.stderr, flush=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{m.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    head = b""
                    while True:
                        chunk = r.read(1 << 20)
                        if not chunk:
                            break
                        if len(head) < 8:
                            head += chunk[:8]
                        h.update(chunk)
                        f.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise ValueError(f"downloading {m.name} from {url} failed ({exc}); put the file "
                                 f"in {dest.parent} or in $EPIGEO_MODELS/{m.group}/") from None
        if not _looks_like_model(head, m.name):
            raise ValueError(f"downloading {m.name} from {url}: the server sent something that is "
                             f"not a model file (first bytes {head[:8]!r}); nothing kept")
        digest = h.hexdigest()
        if m.sha256 and digest != m.sha256:
            raise ValueError(f"downloading {m.name} from {url}: SHA-256 {digest}, expected "
                             f"{m.sha256} (a different or damaged file); nothing kept")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def model_path(key: str, *, cache: Path | None = None, download: bool = True,
               url: str | None = None, quiet: bool = False) -> Path:
    """Local path of model ``key`` (a :data:`MODELS` key), downloading it into the cache when no
    folder holds it (see the module docstring). ``download=False`` raises ``ValueError`` naming
    the folders searched instead."""
    if key not in MODELS:
        raise ValueError(f"key: expected one of {sorted(MODELS)}, got {key!r}")
    m = MODELS[key]
    cands = _candidates(m, cache)
    for p in cands:
        if p.is_file():
            return p
    if not download:
        raise ValueError(f"model {m.name} not found (looked in: {', '.join(map(str, cands))}); "
                         "set EPIGEO_MODELS to a folder holding it")
    return download_model(m, cands[-1], url=url, quiet=quiet)
