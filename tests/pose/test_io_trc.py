"""OpenSim .trc: every header field, marker names, units, frame rate and NaN read back."""
import numpy as np
import pytest

from pose.io_trc import read_trc, write_trc


def test_trc_round_trip_every_field(tmp_path, rng):
    T, M = 7, 4
    X = rng.normal(0, 1, (T, M, 3))
    X[2, 1] = np.nan                                 # a missing marker: empty cells
    names = ["Hip", "RKnee", "LKnee", "Head"]
    path = write_trc(tmp_path / "person_01.trc", X, names, fps=50.0, units="mm",
                     start_frame=11, orig_num_frames=20, camera_rate=100.0,
                     orig_data_rate=100.0)
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["PathFileType", "4", "(X/Y/Z)", "person_01.trc"]
    assert lines[1].split("\t") == ["DataRate", "CameraRate", "NumFrames", "NumMarkers",
                                    "Units", "OrigDataRate", "OrigDataStartFrame",
                                    "OrigNumFrames"]
    assert lines[2].split("\t") == ["50", "100", "7", "4", "mm", "100", "11", "20"]
    assert lines[3].split("\t")[:6] == ["Frame#", "Time", "Hip", "", "", "RKnee"]
    assert lines[4].split("\t")[2:5] == ["X1", "Y1", "Z1"] and lines[5] == ""
    assert lines[8].split("\t")[5:8] == ["", "", ""]    # frame 3, marker 2: blank = NaN
    d = read_trc(path)
    assert d.path_file_type == 4 and d.file_name == "person_01.trc"
    assert (d.data_rate, d.camera_rate, d.orig_data_rate) == (50.0, 100.0, 100.0)
    assert (d.units, d.orig_data_start_frame, d.orig_num_frames) == ("mm", 11, 20)
    assert d.marker_names == tuple(names) and d.points.shape == (T, M, 3)
    np.testing.assert_array_equal(d.frame_numbers, np.arange(11, 18))
    np.testing.assert_allclose(d.times, np.arange(T) / 50.0, atol=1e-6)
    np.testing.assert_allclose(d.points, X, atol=1e-6)   # NaN in the same place
    assert np.isnan(d.points[2, 1]).all() and np.isfinite(np.delete(d.points, 1, 1)).all()
    # defaults: CameraRate = OrigDataRate = fps, start frame 1, OrigNumFrames = T; metres
    d2 = read_trc(write_trc(tmp_path / "b.trc", X[:3], names, fps=30))
    assert (d2.camera_rate, d2.orig_data_rate, d2.orig_data_start_frame, d2.orig_num_frames,
            d2.units) == (30.0, 30.0, 1, 3, "m")


def test_trc_reads_without_blank_line_and_rejects_bad_input(tmp_path):
    X = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    p = write_trc(tmp_path / "a.trc", X, ["A", "B"], fps=25)
    text = p.read_text().splitlines()
    del text[5]                                      # Pose2Sim writes no empty line
    (tmp_path / "c.trc").write_text("\n".join(text) + "\n")
    np.testing.assert_allclose(read_trc(tmp_path / "c.trc").points, X)
    with pytest.raises(ValueError, match="units"):
        write_trc(tmp_path / "x.trc", X, ["A", "B"], fps=25, units="cm")
    with pytest.raises(ValueError, match="marker_names"):
        write_trc(tmp_path / "x.trc", X, ["A"], fps=25)
    with pytest.raises(ValueError, match="marker_names"):
        write_trc(tmp_path / "x.trc", X, ["A", "A"], fps=25)
    with pytest.raises(ValueError, match="fps"):
        write_trc(tmp_path / "x.trc", X, ["A", "B"], fps=0)
    assert not (tmp_path / "x.trc").exists()
    text[2] = text[2].replace("\t2\t2\t", "\t3\t2\t")   # NumFrames 3, two rows
    (tmp_path / "d.trc").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"d\.trc.*NumFrames"):
        read_trc(tmp_path / "d.trc")
    (tmp_path / "e.trc").write_text("hello\n")
    with pytest.raises(ValueError, match=r"e\.trc.*PathFileType"):
        read_trc(tmp_path / "e.trc")
