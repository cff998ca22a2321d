"""Reading data back with the Python client: `read_plane` returns a dataset's plane as a numpy
array, by index or by t/c/z and position, the same pixels tifffile reads from the file; for a
run of this daemon and, after a restart, for one from before it."""

import numpy as np
import pytest
import tifffile

import microscoped_client as mc
from microscoped_client import Microscope, State

PLAN = {
    "axis_order": "tpcz",
    "stage_positions": [{"x": 100.0, "y": 100.0, "z": 100.0}, {"x": 300.0, "y": 50.0, "z": 90.0}],
    "channels": ["DAPI", "GFP"],
    "z_plan": {"range": 2, "step": 1},
    "time_plan": {"interval": 0.1, "loops": 2},
}


def plane_of(path, t, c, z):
    """Plane (t, c, z) of an OME-TIFF as tifffile reads it from the OME metadata."""
    with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        data = series.asarray()
        at = {"T": t, "C": c, "Z": z}
        return data[tuple(at.get(a, 0) if a in "TCZ" else slice(None) for a in series.axes)]


def page_of(path, index):
    with tifffile.TiffFile(path) as tf:
        return tf.pages[index].asarray()


def test_read_plane_by_index_and_by_tcz_as_numpy(serve, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = serve()
    with Microscope(first.addr) as scope:
        status = scope.run_plan(PLAN, name="readback")
        assert status.state is State.FINISHED
        files = [tmp_path / f for f in status.files]
        assert len(files) == 2
        for p, f in enumerate(files):
            for t, c, z in [(0, 0, 0), (1, 1, 2), (0, 1, 1)]:
                arr = scope.read_plane(status.id, t=t, c=c, z=z, position=p)
                assert isinstance(arr, np.ndarray)
                assert arr.dtype == np.uint16 and arr.shape == (512, 512)
                assert np.array_equal(arr, plane_of(f, t, c, z)), (p, t, c, z)
        assert np.array_equal(scope.read_plane(status.id, 7, position=1), page_of(files[1], 7))
        # Left-out coordinates are 0; the most recent acquisition is the default.
        assert np.array_equal(scope.read_plane(t=1), plane_of(files[0], 1, 0, 0))

        run = scope.start_plan({"channels": ["GFP", "DAPI"]}, name="second")
        run.wait()
        (f,) = [tmp_path / name for name in run.status().files]
        assert np.array_equal(run.read_plane(c=1), plane_of(f, 0, 1, 0))

        with pytest.raises(mc.OutOfRange, match="12 plane"):
            scope.read_plane(status.id, 12)
        with pytest.raises(mc.OutOfRange, match="t=2"):
            scope.read_plane(status.id, t=2)
        with pytest.raises(mc.InvalidArgument, match="no position 2"):
            scope.read_plane(status.id, position=2)
        with pytest.raises(ValueError):
            scope.read_plane(status.id, 1, t=1)
        with pytest.raises(mc.NotFound):
            scope.read_plane(999)
        expected = plane_of(files[1], 1, 1, 2)

    # Tomorrow: a new daemon lists yesterday's runs and reads them.
    first.stop()
    addr = serve().addr
    with Microscope(addr) as scope:
        old = {s.name: s for s in scope.acquisitions()}
        assert {"readback", "second"} <= set(old)
        assert old["readback"].state is State.FINISHED
        assert old["readback"].written == 24
        arr = scope.read_plane(old["readback"].id, t=1, c=1, z=2, position=1)
        assert np.array_equal(arr, expected)
