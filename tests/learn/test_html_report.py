"""report.html (learn.html_report): structure, self-containment, frustum geometry, video frames,
the `epigeo reconstruct` hook, and a real headless Chromium loading the page (skipped when no
`chromium` is installed: `apt-get install chromium`)."""
import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

import geometry as geo
import pose
from learn.cli import main
from learn.html_report import video_frames, write_html_report
from learn.report_3d import frustum_corners

SK = pose.get_skeleton("h36m_17")


@pytest.fixture(scope="module")
def people():
    rig = pose.make_people_rig("h36m", 3, seed=0)
    noise = pose.DetectorNoise(sigma_px=1.0, outlier_ratio=0.0, missing_ratio=0.02,
                               swap_ratio=0.0)
    return pose.make_people(1, ("walk", "squat"), 10, rig=rig, noise=noise, seed=0)


def _report(people, metric, out, frames=None):
    rig = people.rig
    rep = {"input": "synthetic <trial>", "mode": "rig", "frames": people.X.shape[0],
           "joints": 17, "summary": {"rig": {"cameras": 3}, "median_px": 1.25},
           "warnings": ["camera c2: something to say"],
           "against_calibration": {"pairs": [{"pair": "0-1", "rotation_deg": 0.5,
                                              "translation_deg": 1.5}],
                                   "median_rotation_deg": 0.5, "max_rotation_deg": 0.5,
                                   "median_translation_deg": 1.5, "max_translation_deg": 1.5}}
    res = np.abs(np.random.default_rng(0).normal(0, 1, people.x.shape[:3]))
    return write_html_report(out, rep, people.X, rig.R, rig.t, rig.K, rig.image_size, SK,
                             metric, frames, residuals=res, camera_names=["c0", "c1", "c2"],
                             fps=50.0, max_frames=15)


class _Refs(HTMLParser):
    """Every tag with its attributes, and the text of each script."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag == "script"
        if self._in:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in = False if tag == "script" else self._in

    def handle_data(self, data):
        if self._in:
            self.scripts[-1] += data


def _page_without_plotlyjs(page: str) -> str:
    from plotly.offline import get_plotlyjs
    js = get_plotlyjs()
    assert page.count(js) == 1          # inlined exactly once
    return page.replace(js, "")


def test_page_is_self_contained_with_tables_and_plotly_divs(tmp_path, people):
    path = _report(people, False, tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(page)
    for tag, attrs in refs.tags:   # nothing loaded from outside: no src/href but data: URIs
        for key in ("src", "href", "data", "srcset"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), (tag, key, attrs[key][:80])
        assert tag not in ("iframe", "link", "object", "embed"), tag
    rest = _page_without_plotlyjs(page)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", rest, re.I)
    assert not re.search(r"https?://", rest)
    assert len(refs.scripts[0]) > 1_000_000 and "Plotly" in refs.scripts[0]
    assert [t for t, a in refs.tags if t == "div" and a.get("id") == "view3d"]
    assert "plotly-graph-div" in rest and 'id="errors"' in rest
    assert rest.count("<table") == 5   # summary, 2 against the calibration, cameras, figures
    assert "synthetic &lt;trial&gt;" in rest and "<trial>" not in rest   # escaped
    for s in ("c0", "c1", "c2", "camera c2: something to say", "rig.cameras", "median_px"):
        assert s in rest
    # not metric: no "(m)" anywhere on the page, axes say so
    assert "(m)" not in rest and "x (arbitrary units)" in rest
    assert not list(tmp_path.glob(".*tmp*"))          # atomic: no temporary file left


def test_metric_axes_and_animation_frames(tmp_path, people):
    page = _page_without_plotlyjs(_report(people, True, tmp_path).read_text())
    assert '"text":"x (m)"' in page and '"text":"z (m)"' in page and "arbitrary" not in page
    # the slider holds max_frames evenly spaced time steps, each an animation frame
    assert page.count('"method":"animate"') == 15 + 2      # steps + play/pause
    assert "Plotly.addFrames" in page


def test_frustums_reproject_onto_the_image_corners():
    rig = geo.make_ring_rig(4, jitter_deg=10.0, seed=3)
    K = rig.K.copy()
    K[1, 0, 2] += 40.0      # an off-centre principal point
    fr = frustum_corners(K, rig.R, rig.t, (1000, 800), depth=0.7)
    assert fr.shape == (4, 5, 3)
    centres = -np.einsum("cji,cj->ci", rig.R, rig.t)
    np.testing.assert_allclose(fr[:, 0], centres, atol=1e-12)
    want = np.array([[0, 0], [1000, 0], [1000, 800], [0, 800]], float)
    for c in range(4):
        x, z = geo.project_points(fr[c, 1:], K[c], rig.R[c], rig.t[c], return_depth=True)
        np.testing.assert_allclose(x, want, atol=1e-6)
        np.testing.assert_allclose(z, 0.7, atol=1e-12)
    with pytest.raises(ValueError, match="K, R, t"):
        frustum_corners(K[:2], rig.R, rig.t, (1000, 800), 1.0)


def test_view_up_is_the_lab_vertical_for_upright_and_upside_down_cameras():
    from learn.report_3d import _up_vector
    rig = geo.make_ring_rig(4, jitter_deg=10.0, seed=0)      # its images are upside down
    X = pose.make_motion("walk", 20)                        # z up
    flip = np.diag([-1.0, -1.0, 1.0])                       # the same cameras, upright images
    for R in (rig.R, flip @ rig.R):
        up = _up_vector(X, R, SK)
        assert np.degrees(np.arccos(up @ [0, 0, 1])) < 1.0
    # no usable body: the cameras alone (upright ones)
    up = _up_vector(np.full_like(X, np.nan), flip @ rig.R, SK)
    assert np.degrees(np.arccos(up @ [0, 0, 1])) < 1.0


def test_bad_arguments_are_named(tmp_path, people):
    rig = people.rig
    args = (tmp_path, {}, people.X, rig.R, rig.t, rig.K, rig.image_size, SK, False)
    with pytest.raises(ValueError, match="X: expected shape"):
        write_html_report(tmp_path, {}, people.X[..., :2], *args[3:])
    with pytest.raises(ValueError, match="camera_names"):
        write_html_report(*args, camera_names=["a"])
    with pytest.raises(ValueError, match="residuals"):
        write_html_report(*args, residuals=np.zeros((2, 3, 17)))
    with pytest.raises(ValueError, match=r"frames\[0\]"):
        write_html_report(*args, [("c0", np.zeros((8, 8, 3), np.uint8), np.zeros((5, 2)),
                                   np.zeros((17, 2)))])
    assert not (tmp_path / "report.html").exists()


def _write_videos_and_detections(root, people, frames):
    """What `epigeo detect` leaves: camXX_json/ per camera, detect.json, and the videos."""
    vids = root / "videos"
    vids.mkdir(parents=True)
    kp = np.concatenate([np.nan_to_num(people.x), people.confidence[..., None]], -1)
    C, T = kp.shape[:2]
    names = [f"cam{c + 1:02d}" for c in range(C)]
    W, H = (int(v) for v in people.rig.image_size)
    for c, name in enumerate(names):
        vw = cv2.VideoWriter(str(vids / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                             (W // 4, H // 4))
        for f in range(frames):
            img = np.full((H // 4, W // 4, 3), 60 + 10 * c, np.uint8)
            cv2.putText(img, f"{name} {f}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255,) * 3)
            vw.write(img)
        vw.release()
        (root / "det" / f"{name}_json").mkdir(parents=True)
        for f in range(T):
            pose.write_openpose_json(root / "det" / f"{name}_json" /
                                     f"{name}_{f:012d}_keypoints.json", kp[c, f])
    meta = {"backend": "test", "skeleton": "h36m_17", "video_dir": str(vids), "cameras": names,
            "videos": [f"{n}.avi" for n in names], "fps": 25.0,
            "image_size": [[W, H]] * C, "frames": list(range(T)), "stride": 1}
    (root / "det" / "detect.json").write_text(json.dumps(meta))
    return root / "det", names


def test_video_frames_pair_video_images_with_reprojections(tmp_path, people):
    T = people.X.shape[0]
    det, names = _write_videos_and_detections(tmp_path, people, T)
    rig = people.rig
    fr = video_frames(det, names, people.x, people.X, rig.K, rig.R, rig.t, times=2)
    assert [f[0] for f in fr] == [n for n in names for _ in range(2)]
    for cam, img, d, r in fr:
        assert img.shape == (rig.image_size[1] // 4, rig.image_size[0] // 4, 3)
        err = np.linalg.norm(d - r, axis=1)
        assert np.nanmedian(err) < 3.0        # 1 px detector noise
    # detect.json with another frame count, or a missing video: no frames, no error
    assert video_frames(det, names, people.x[:, :5], people.X[:5], rig.K, rig.R, rig.t) == []
    assert video_frames(tmp_path, names, people.x, people.X, rig.K, rig.R, rig.t) == []
    page = _report(people, False, tmp_path / "out", frames=fr).read_text()
    assert page.count("src='data:image/jpeg;base64,") == len(fr) == 6


def test_epigeo_reconstruct_writes_report_html_with_video_frames(tmp_path, people, capsys):
    det, names = _write_videos_and_detections(tmp_path, people, people.X.shape[0])
    out = tmp_path / "out"
    rc = main([str(a) for a in ("reconstruct", det, "--image-size", 1000, 1000, "--skeleton",
                                "h36m_17", "--out", out, "--quiet")])
    assert rc == 0, capsys.readouterr().err
    page = (out / "report.html").read_text()
    rest = _page_without_plotlyjs(page)
    assert all(n in rest for n in names) and "(m)" not in rest
    assert rest.count("src='data:image/jpeg;base64,") == 2 * len(names)
    assert rest.count("src='data:image/png;base64,") >= 2          # rig.png, skeleton.png
    digests = json.loads((out / "report.json").read_text()).get("outputs_sha256", {})
    assert not digests or "report.html" in digests


# ---- a real browser ---------------------------------------------------------------------------

def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _CDP:
    """The Chrome DevTools Protocol over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, exe, profile):
        cmd_r, self._cmd_w = os.pipe()
        self._ev_r, ev_w = os.pipe()
        # bash moves them to fds 3 and 4: first lift them above 9 (no clash)
        lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (cmd_r, ev_w)]
        os.close(cmd_r)
        os.close(ev_w)
        cmd_r, ev_w = lifted
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--window-size=1400,1000", "about:blank"]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{cmd_r} 4>&{ev_w}', "bash", *args],
            pass_fds=(cmd_r, ev_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(ev_w)
        self._buf, self._id, self.events = b"", 0, []

    def _read(self, deadline):
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            if select.select([self._ev_r], [], [], 0.5)[0]:
                chunk = os.read(self._ev_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=None, timeout=60.0, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait_event(self, name, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == name for e in self.events):
            self.events.append(self._read(deadline))

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._cmd_w)
        os.close(self._ev_r)


def _colour_pixels(img_bgr, hex_rgb, tol=30):
    r, g, b = (int(hex_rgb[i:i + 2], 16) for i in (1, 3, 5))
    return int((np.abs(img_bgr.astype(int) - [b, g, r]).max(-1) <= tol).sum())


@pytest.mark.skipif(_chromium() is None, reason="no chromium (apt-get install chromium)")
def test_chromium_loads_the_page_without_errors_and_renders_the_3d_view(tmp_path, people):
    from learn.report_3d import CAMERA_COLOURS, SIDE_COLOURS
    path = _report(people, True, tmp_path)
    cdp = _CDP(_chromium(), tmp_path / "profile")
    try:
        target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
        s = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            cdp.call(f"{domain}.enable", session=s)
        cdp.call("Page.navigate", session=s, url=path.as_uri())
        cdp.wait_event("Page.loadEventFired")
        probe = ("JSON.stringify({canvases: document.querySelectorAll("
                 "'#view3d .gl-container canvas').length, svg: document.querySelectorAll("
                 "'#view3d .main-svg').length, frames: (document.getElementById('view3d')"
                 "._transitionData || {})._frames ? document.getElementById('view3d')"
                 "._transitionData._frames.length : 0, nogl: document.body.innerText"
                 ".includes('WebGL is not supported')})")
        deadline = time.monotonic() + 60
        while True:
            state = json.loads(cdp.call("Runtime.evaluate", session=s, expression=probe)
                               ["result"]["value"])
            if (state["canvases"] >= 2 and state["frames"] == 15) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert state["canvases"] >= 2 and state["svg"] >= 1 and not state["nogl"], state
        assert state["frames"] == 15, state
        time.sleep(1.0)                                 # let WebGL draw
        rect = json.loads(cdp.call("Runtime.evaluate", session=s, expression=(
            "(() => {const r = document.getElementById('view3d').getBoundingClientRect(); "
            "return JSON.stringify({x: r.x + window.scrollX, y: r.y + window.scrollY, "
            "width: r.width, height: r.height})})()"))["result"]["value"])
        shot = cdp.call("Page.captureScreenshot", session=s, format="png",
                        captureBeyondViewport=True,
                        clip={"x": rect["x"], "y": rect["y"],
                              "width": rect["width"], "height": rect["height"], "scale": 1})
        img = cv2.imdecode(np.frombuffer(base64.b64decode(shot["data"]), np.uint8),
                           cv2.IMREAD_COLOR)
        (tmp_path / "view3d.png").write_bytes(cv2.imencode(".png", img)[1].tobytes())
        w = img.shape[1]
        rig_view, close_up = img[:, int(0.16 * w):int(0.66 * w)], img[:, int(0.70 * w):]
        # drawn by WebGL (the legend, in SVG, is left of 0.14 w): frustums and both bone sides
        for c in range(3):
            assert _colour_pixels(rig_view, CAMERA_COLOURS[c]) > 20, f"camera {c} not drawn"
        for side in ("left", "right"):
            assert _colour_pixels(rig_view, SIDE_COLOURS[side]) > 10, side
            assert _colour_pixels(close_up, SIDE_COLOURS[side]) > 50, side
        errors = [e for e in cdp.events if
                  (e.get("method") == "Runtime.consoleAPICalled"
                   and e["params"]["type"] in ("error", "assert"))
                  or e.get("method") == "Runtime.exceptionThrown"
                  or (e.get("method") == "Log.entryAdded"
                      and e["params"]["entry"]["level"] == "error")]
        assert not errors, json.dumps(errors)[:2000]
    finally:
        cdp.close()
