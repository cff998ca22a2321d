"""Multi-dimensional plans read back by independent readers: a 2 positions x 3 channels x 5 z x
4 time points useq plan on the demo instrument (with its data root moved to a temp folder),
checked with tifffile (series shape and axes) and ome-types (schema-valid OME-XML, channel
names, plane indices and stage positions)."""

import pathlib
import re

import grpc
import ome_types
import tifffile

ROOT = pathlib.Path(__file__).resolve().parents[2]

PLAN = """
axis_order: tpcz
stage_positions:
  - {x: 100.0, y: 200.0, z: 90.0, name: left}
  - {x: -300.0, y: 50.0, z: 110.0, name: right}
channels:
  - {config: DAPI, exposure: 5}
  - {config: GFP, exposure: 5}
  - {config: mCherry, exposure: 5}
z_plan: {range: 4.0, step: 1.0}
time_plan: {interval: 0.1, loops: 4}
"""


def demo_config(tmp_path):
    text = (ROOT / "config" / "demo.toml").read_text()
    text = text.replace('data_root = "data"', f'data_root = "{tmp_path / "data"}"')
    text = text.replace("width = 512\nheight = 512", "width = 128\nheight = 96")
    path = tmp_path / "demo.toml"
    path.write_text(text)
    return path


def test_a_plan_reads_back_as_planned(pb, serve, tmp_path):
    msgs, svc = pb
    d = serve(demo_config(tmp_path))
    with grpc.insecure_channel(d.addr) as ch:
        acq = svc.AcquisitionStub(ch)
        req = msgs.PlanRequest(useq_yaml=PLAN, name="timelapse")
        summary = acq.ValidatePlan(req)
        assert (summary.events, summary.files) == (120, 2)
        started = acq.StartPlan(req)
        final = None
        for status in acq.WatchAcquisition(msgs.AcquisitionRef(id=started.id), timeout=120):
            final = status
        assert final.state == msgs.ACQUISITION_STATE_FINISHED, final
        assert (final.written, final.dropped) == (120, 0)
        files = list(final.plan.files)

    assert [pathlib.Path(f).name for f in files] == ["timelapse_p000.ome.tiff", "timelapse_p001.ome.tiff"]
    for f, (name, x, y, z0) in zip(files, [("left", 100.0, 200.0, 90.0), ("right", -300.0, 50.0, 110.0)]):
        with tifffile.TiffFile(f) as t:
            s = t.series[0]
            assert s.axes == "TCZYX"
            assert s.shape == (4, 3, 5, 96, 128)
        ome = ome_types.from_tiff(f, validate=True)
        px = ome.images[0].pixels
        assert [c.name for c in px.channels] == ["DAPI", "GFP", "mCherry"]
        assert (px.size_t, px.size_c, px.size_z) == (4, 3, 5)
        assert len(px.planes) == 60
        for plane in px.planes:
            assert abs(plane.position_x - x) < 0.01 and abs(plane.position_y - y) < 0.01
            assert abs(plane.position_z - (z0 - 2.0 + plane.the_z)) < 0.01
        assert sorted({(p.the_t, p.the_c, p.the_z) for p in px.planes}) == [
            (t, c, z) for t in range(4) for c in range(3) for z in range(5)
        ]
        # What the instrument knows: the z step, each channel's laser and emission filter
        # (demo.toml's emission_nm), the position, and numbers rounded as the quantity deserves.
        assert px.physical_size_z == 1.0 and px.physical_size_z_unit.value == "µm"
        for c, (ex, em) in zip(px.channels, [(405, 460), (488, 525), (561, 620)]):
            assert (c.excitation_wavelength, c.emission_wavelength) == (ex, em), c
            assert c.excitation_wavelength_unit.value == "nm"
        label = ome.images[0].stage_label
        assert label.name == name
        assert (label.x, label.y, label.z) == (x, y, z0)
        with tifffile.TiffFile(f) as t:
            xml = t.ome_metadata
        for key, decimals in [("DeltaT", 6), ("ExposureTime", 3), ("PositionX", 3), ("PositionZ", 3)]:
            values = re.findall(rf' {key}="([^"]*)"', xml)
            assert len(values) == 60, key
            assert all(len(v.partition(".")[2]) <= decimals for v in values), (key, values[:5])
    folder = pathlib.Path(files[0]).parent
    assert (folder / "plan.useq.json").is_file() and (folder / "summary.json").is_file()


def test_a_bad_plan_names_the_field(pb, serve, tmp_path):
    msgs, svc = pb
    d = serve(demo_config(tmp_path))
    with grpc.insecure_channel(d.addr) as ch:
        acq = svc.AcquisitionStub(ch)
        try:
            acq.StartPlan(msgs.PlanRequest(useq_json='{"channels": ["Cy5"]}'))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "channels[0].config" in e.details() and "DAPI" in e.details()
        else:
            raise AssertionError("an unknown preset was accepted")
