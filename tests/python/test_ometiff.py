"""Datasets written by the daemon, read by independent readers: tifffile and ome-types (the
OME-XML validated against the 2016-06 schema). Includes a daemon killed with SIGKILL mid-run and
repaired by `microscoped recover`."""

import pathlib
import subprocess
import time

import grpc
import numpy as np
import ome_types
import pytest
import tifffile

W, H = 128, 96


def config(tmp_path, root):
    path = tmp_path / "instrument.toml"
    path.write_text(f"""
[instrument]
name = "py-acq"
objective = "Objective"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{root}"
ring_mb = 4

[devices.Camera]
driver = "sim.camera"
width = {W}
height = {H}
bit_depth = 12
pixel_size_um = 0.5
exposure_ms = 5.0
readout_ms = 1.0
pattern = "ramp"

[devices.XY]
driver = "sim.xy_stage"

[devices.Z]
driver = "sim.stage"
home_um = 42.0

[devices.Laser488]
driver = "sim.laser"
wavelength_nm = 488.0

[devices.Objective]
driver = "sim.state"
labels = ["20x/0.75", "60x/1.4 oil"]
""")
    return path


def ramp(n):
    first = n * 7919 % 4096
    return ((first + np.arange(W * H)) % 4096).astype(np.uint16).reshape(H, W)


def stubs(pb, addr):
    msgs, svcs = pb
    ch = grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", 1 << 28)])
    return msgs, svcs.AcquisitionStub(ch), svcs.MicroscopeStub(ch)


def wait_done(acq, msgs, acq_id, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        s = acq.GetAcquisition(msgs.AcquisitionRef(id=acq_id), timeout=5)
        if s.state != msgs.ACQUISITION_STATE_RUNNING:
            return s
        time.sleep(0.02)
    raise AssertionError(f"acquisition {acq_id} never ended")


def check_file(path, frames):
    with tifffile.TiffFile(path) as tf:
        assert tf.is_ome
        assert len(tf.series) == 1
        series = tf.series[0]
        data = series.asarray()
        assert series.axes == ("TYX" if frames > 1 else "YX"), series.axes
        assert data.shape[-2:] == (H, W)
        assert data.reshape(-1, H, W).shape[0] == frames
    meta = ome_types.from_tiff(path, validate=True)
    pixels = meta.images[0].pixels
    assert (pixels.size_x, pixels.size_y, pixels.size_t) == (W, H, frames)
    assert len(pixels.planes) == frames
    return data.reshape(-1, H, W), meta


def test_burst_reads_back_in_tifffile_and_validates(tmp_path, serve, pb):
    root = tmp_path / "data"
    d = serve(config(tmp_path, root))
    msgs, acq, scope = stubs(pb, d.addr)
    scope.SetProperty(msgs.SetPropertyRequest(device="Objective", property="label",
                                              value=msgs.Value(string_value="60x/1.4 oil")), timeout=5)
    s = acq.StartSequence(msgs.StartSequenceRequest(frames=12, name="burst"), timeout=10)
    done = wait_done(acq, msgs, s.id)
    assert done.state == msgs.ACQUISITION_STATE_FINISHED
    assert (done.received, done.written, done.dropped) == (12, 12, 0)
    path = root / "local" / "burst" / "burst.ome.tiff"
    assert pathlib.Path(done.path) == path

    data, meta = check_file(path, 12)
    for n in range(12):
        np.testing.assert_array_equal(data[n], ramp(n))
    image = meta.images[0]
    pixels = image.pixels
    assert pixels.dimension_order.value == "XYCZT"
    assert pixels.physical_size_x == pytest.approx(0.5)
    assert [c.name for c in pixels.channels] == ["Camera"]
    assert [p.the_t for p in pixels.planes] == list(range(12))
    assert all(p.position_z == pytest.approx(42.0) for p in pixels.planes)
    assert all(p.exposure_time == pytest.approx(5.0) for p in pixels.planes)
    deltas = [p.delta_t for p in pixels.planes]
    assert deltas == sorted(deltas) and deltas[0] == 0
    # The laser's power read back for every plane (it is off: 0 mW), referred to by the plane.
    maps = {a.id: a for a in meta.structured_annotations.map_annotations}
    for plane in pixels.planes:
        (ref,) = plane.annotation_refs
        values = {m.k: m.value for m in maps[ref.id].value.ms}
        assert float(values["Laser488 power_mW"]) == 0.0
    inst = meta.instruments[0]
    assert inst.detectors[0].model == "Camera"
    assert [l.wavelength for l in inst.lasers] == [488.0]
    assert inst.objectives[0].nominal_magnification == 60
    assert inst.objectives[0].lens_na == pytest.approx(1.4)


def test_stopped_early_xml_matches_frames_written(tmp_path, serve, pb):
    root = tmp_path / "data"
    d = serve(config(tmp_path, root))
    msgs, acq, _ = stubs(pb, d.addr)
    s = acq.StartSequence(msgs.StartSequenceRequest(frames=100000, name="early"), timeout=10)
    deadline = time.monotonic() + 30
    while acq.GetAcquisition(msgs.AcquisitionRef(id=s.id), timeout=5).written < 6:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stopped = acq.StopAcquisition(msgs.AcquisitionRef(id=s.id), timeout=30)
    assert stopped.state == msgs.ACQUISITION_STATE_STOPPED
    data, _ = check_file(stopped.path, stopped.written)
    for n in range(stopped.written):
        np.testing.assert_array_equal(data[n], ramp(n))


def test_sigkill_mid_run_then_recover(tmp_path, serve, pb):
    root = tmp_path / "data"
    d = serve(config(tmp_path, root))
    msgs, acq, _ = stubs(pb, d.addr)
    s = acq.StartSequence(msgs.StartSequenceRequest(until_stopped=True, name="killed"), timeout=10)
    deadline = time.monotonic() + 30
    while acq.GetAcquisition(msgs.AcquisitionRef(id=s.id), timeout=5).written < 10:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    d.proc.kill()
    d.proc.wait(timeout=10)
    path = pathlib.Path(s.path)
    assert path.exists()

    out = subprocess.run([d.binary, "recover", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "recovered" in out.stdout
    with tifffile.TiffFile(path) as tf:
        frames = len(tf.pages)
    assert frames >= 10
    data, meta = check_file(path, frames)
    for n in range(frames):
        np.testing.assert_array_equal(data[n], ramp(n))
    assert not pathlib.Path(str(path) + ".frames.jsonl").exists()

    again = subprocess.run([d.binary, "recover", str(path)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to recover" in again.stdout
