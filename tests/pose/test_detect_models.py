"""pose.detect.models: EPIGEO_MODELS, the cache, and a real download from a local stand-in
server (http.server on 127.0.0.1), including the failures."""
from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest

from pose.detect import MODELS, ModelFile, download_model, model_path


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_environment_folder_is_used_first(tmp_path, monkeypatch):
    m = MODELS["blazepose_detector"]
    (tmp_path / "models" / m.group).mkdir(parents=True)
    f = tmp_path / "models" / m.group / m.name
    f.write_bytes(b"1234TFL3")
    monkeypatch.setenv("EPIGEO_MODELS", str(tmp_path / "models"))
    assert model_path("blazepose_detector", cache=tmp_path / "cache", download=False) == f
    monkeypatch.delenv("EPIGEO_MODELS")
    with pytest.raises(ValueError, match="pose_detection.tflite not found.*cache"):
        model_path("blazepose_detector", cache=tmp_path / "cache", download=False)
    with pytest.raises(ValueError, match="key"):
        model_path("yolo")


def test_download_from_a_local_server(server, tmp_path, monkeypatch, capsys):
    root, url = server
    monkeypatch.delenv("EPIGEO_MODELS", raising=False)
    body = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 64
    (root / "pose_detection.tflite").write_bytes(body)
    m = ModelFile("blazepose", "pose_detection.tflite", f"{url}/pose_detection.tflite",
                  hashlib.sha256(body).hexdigest(), "test")
    monkeypatch.setitem(MODELS, "stand_in", m)
    cache = tmp_path / "cache"
    p = model_path("stand_in", cache=cache)
    assert p == cache / m.group / m.name and p.read_bytes() == body
    err = capsys.readouterr().err
    assert "downloading it from http://127.0.0.1" in err and "EPIGEO_MODELS" in err
    (root / "pose_detection.tflite").unlink()
    assert model_path("stand_in", cache=cache) == p      # cached now: no second download
    assert [f.name for f in (cache / m.group).iterdir()] == [m.name]
    # the real entries pin MediaPipe's versions of the files
    assert "generation=" in MODELS["blazepose_detector"].url
    assert len(MODELS["blazepose_landmarks_full"].sha256) == 64


def test_download_failures_leave_nothing(server, tmp_path):
    root, url = server
    (root / "index.tflite").write_text("<html>a login page, not a model</html>")
    m = ModelFile("g", "x.tflite", f"{url}/index.tflite", "", "test")
    dest = tmp_path / "cache" / "g" / "x.tflite"
    with pytest.raises(ValueError, match="not a model file"):
        download_model(m, dest, quiet=True)
    (root / "other.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3 another model")
    pinned = ModelFile("g", "x.tflite", f"{url}/other.tflite", "0" * 64, "test")
    with pytest.raises(ValueError, match="SHA-256 .* expected 0000"):
        download_model(pinned, dest, quiet=True)
    with pytest.raises(ValueError, match=f"{url}/missing.tflite failed.*404"):
        download_model(m, dest, url=f"{url}/missing.tflite", quiet=True)
    with pytest.raises(ValueError, match="failed"):
        download_model(m, dest, url="http://127.0.0.1:9/nothing.tflite", quiet=True,
                       timeout=5)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
