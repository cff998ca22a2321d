"""The Python client package (clients/python), installed into the test venv as a user installs
it: its committed stubs match proto/, and its helper and example scripts drive the real daemon.

Plans run on the demo instrument (its `Channel` presets DAPI, GFP, mCherry); those daemons are
started in a temporary folder so their datasets (`data/NAME/...`, relative to the daemon's
working folder) land there.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import tifffile
import useq

import microscoped_client as mc
from microscoped_client import Microscope, State
from microscoped_client.proto import apb, apb_grpc, pb, pb_grpc

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
EXAMPLES = CLIENT / "examples"


# -- generated stubs ------------------------------------------------------------------------


def test_committed_stubs_are_up_to_date_with_proto():
    """A proto change without `python clients/python/generate.py` fails here."""
    r = subprocess.run([sys.executable, str(CLIENT / "generate.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_check_catches_a_proto_change(tmp_path):
    proto = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", proto)
    with open(proto / "microscoped" / "v1" / "microscope.proto", "a") as f:
        f.write("\nmessage AddedLater { string x = 1; }\n")
    (proto / "microscoped" / "v1" / "added_later.proto").write_text(
        'syntax = "proto3";\npackage microscoped.v1;\nmessage AddedLaterFile { string holder = 1; }\n')
    r = subprocess.run([sys.executable, str(CLIENT / "generate.py"), "--check", "--proto", str(proto)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "differs from proto/: microscoped/v1/microscope_pb2.py" in r.stderr
    assert "missing: microscoped/v1/added_later_pb2.py" in r.stderr
    assert "generate.py" in r.stderr


def test_stubs_import_from_inside_the_package():
    # The generated modules import each other through the package, not a top-level
    # `microscoped` that would depend on sys.path.
    assert apb_grpc.AcquisitionStub.__module__.startswith("microscoped_client._proto.")
    assert apb.AcquisitionStatus.DESCRIPTOR.fields_by_name["plan"].message_type.name == "PlanProgress"


# -- devices, properties, stages, camera ----------------------------------------------------


def test_devices_set_move_and_snap(daemon):
    with Microscope(daemon) as scope:
        assert scope.instrument().name == "demo"
        devices = {d.name: d for d in scope.devices()}
        assert devices["Camera"].kind == "camera"
        assert devices["XY"].kind == "xy_stage"
        assert devices["Z"].kind == "stage"
        assert devices["Laser488"].kind == "laser"
        assert all(d.healthy and d.fault == "" for d in devices.values())

        # Python types map onto the Value oneof, and the value read back comes back typed.
        assert scope.set("Camera", "exposure_ms", 25) == 25.0
        assert scope.get("Camera", "exposure_ms") == 25.0
        assert scope.set("Laser488", "on", True) is True
        assert scope.set("FilterWheel", "label", "GFP") == "GFP"
        scope.wait_for_idle("FilterWheel")
        assert scope.get("FilterWheel", "position") == 1
        assert scope.set("Camera", "binning", np.int64(1)) == 1

        assert scope.move("XY", 300, -200) == (300.0, -200.0)
        assert scope.position("XY") == (300.0, -200.0)
        assert scope.move("Z", 101.5) == 101.5
        assert scope.move("Z", -1.5, relative=True) == 100.0
        scope.move("XY", 0, 0, wait=False)
        scope.wait_for_idle("XY")
        assert scope.position("XY") == (0.0, 0.0)

        image = scope.snap()
        assert isinstance(image, np.ndarray)
        assert image.shape == (512, 512) and image.dtype == np.uint16
        assert image.flags.writeable
        # The camera offset is 100 counts: a real image, not zeros.
        assert 90 < image.mean() < 4096

        frame = scope.snap_with_metadata("Camera", exposure_ms=5)
        assert frame.exposure_ms == 5.0
        assert frame.bit_depth == 12
        assert frame.stage_positions["XY"] == (0.0, 0.0)
        assert frame.stage_positions["Z"] == 100.0
        assert frame.time_unix_us > 1.6e15

        scope.set("Camera", "binning", 2)
        assert scope.snap().shape == (256, 256)


def test_errors_carry_the_daemons_message(daemon):
    with Microscope(daemon) as scope:
        with pytest.raises(mc.NotFound) as err:
            scope.get("NoSuchDevice", "exposure_ms")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        # Exactly what the daemon said, nothing buried or added.
        raw = pb_grpc.MicroscopeStub(scope.channel)
        with pytest.raises(grpc.RpcError) as rpc_err:
            raw.GetProperty(pb.GetPropertyRequest(device="NoSuchDevice", property="exposure_ms"), timeout=5)
        assert str(err.value) == rpc_err.value.details()
        assert "NoSuchDevice" in str(err.value)

        with pytest.raises(mc.InvalidArgument, match="25000"):
            scope.move("XY", 1e7, 0)
        with pytest.raises(mc.InvalidArgument):
            scope.set("Camera", "exposure_ms", "fast")
        with pytest.raises(mc.FailedPrecondition):
            scope.set("Camera", "bit_depth", 12)
        with pytest.raises(mc.MicroscopedError):
            scope.position("Camera")
        # Checked before anything is sent: the proto has no list values.
        with pytest.raises(TypeError):
            scope.set("Camera", "exposure_ms", [1, 2])


def test_connecting_to_no_daemon_says_so():
    with pytest.raises(mc.Unavailable, match="no microscoped daemon answers at 127.0.0.1:1"):
        Microscope("127.0.0.1:1", timeout=5)


# -- the helper's own logic, against a stand-in server ----------------------------------------


class FakeMicroscope(pb_grpc.MicroscopeServicer):
    def __init__(self):
        self.metadata = []

    def ListDevices(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return pb.ListDevicesResponse(devices=[pb.Device(name="Camera", kind=pb.DEVICE_KIND_CAMERA)])


class FakeAcquisition(apb_grpc.AcquisitionServicer):
    """A plan that runs two events and fails."""

    def __init__(self):
        self.requests = []

    def StartPlan(self, request, context):
        self.requests.append(request)
        return self.status(apb.ACQUISITION_STATE_RUNNING, 0)

    def WatchAcquisition(self, request, context):
        yield self.status(apb.ACQUISITION_STATE_RUNNING, 1)
        yield self.status(apb.ACQUISITION_STATE_FAILED, 2, error="the disk is full (/data: 0 bytes free)")

    @staticmethod
    def status(state, done, error=""):
        return apb.AcquisitionStatus(
            id=7, name="fails", state=state, error=error, written=done,
            plan=apb.PlanProgress(events_total=4, events_done=done, files=["data/fails/fails_p0.ome.tiff"]))


@pytest.fixture()
def fake():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    scope, acq = FakeMicroscope(), FakeAcquisition()
    pb_grpc.add_MicroscopeServicer_to_server(scope, server)
    apb_grpc.add_AcquisitionServicer_to_server(acq, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", scope, acq
    server.stop(None)


def test_token_is_sent_as_bearer_metadata(fake):
    addr, scope, _ = fake
    with Microscope(addr, token="s3cret") as m:
        m.devices()
    assert scope.metadata and all(md.get("authorization") == "Bearer s3cret" for md in scope.metadata)
    scope.metadata.clear()
    with Microscope(addr) as m:
        m.devices()
    assert "authorization" not in scope.metadata[0]


def test_failed_run_raises_acquisition_failed_with_the_daemons_error(fake):
    addr, _, acq = fake
    seen = []
    with Microscope(addr) as m:
        with pytest.raises(mc.AcquisitionFailed, match="the disk is full") as err:
            m.run_plan({"channels": ["DAPI"]}, name="fails", progress=seen.append)
    assert err.value.status.state is State.FAILED
    assert err.value.status.files == ["data/fails/fails_p0.ome.tiff"]
    assert [s.plan.events_done for s in seen] == [1, 2]
    assert json.loads(acq.requests[0].useq_json) == {"channels": ["DAPI"]}
    assert acq.requests[0].name == "fails"


def test_plans_are_sent_in_the_field_their_form_calls_for(tmp_path):
    plan = {"time_plan": {"interval": 1, "loops": 2}, "channels": ["DAPI"]}
    assert json.loads(mc.plan_request(plan).useq_json) == plan
    seq = useq.MDASequence(**plan)
    assert json.loads(mc.plan_request(seq).useq_json) == {"time_plan": {"interval": 1.0, "loops": 2},
                                                          "channels": [{"config": "DAPI"}]}
    assert mc.plan_request(json.dumps(plan)).useq_json == json.dumps(plan)
    assert mc.plan_request("channels: [DAPI]\n").useq_yaml == "channels: [DAPI]\n"
    (tmp_path / "p.yml").write_text("channels: [GFP]\n")
    (tmp_path / "p.json").write_text(json.dumps(plan))
    assert mc.plan_request(tmp_path / "p.yml").useq_yaml == "channels: [GFP]\n"
    assert mc.plan_request(str(tmp_path / "p.json"), "n", "Camera").useq_json == json.dumps(plan)
    assert mc.plan_request(str(tmp_path / "p.json"), "n", "Camera").camera == "Camera"
    with pytest.raises(FileNotFoundError):
        mc.plan_request(str(tmp_path / "missing.yaml"))
    message = apb.MdaSequence(channels=[apb.PlanChannel(config="DAPI")])
    assert mc.plan_request(message).sequence == message


# -- plans on the real daemon --------------------------------------------------------------


@pytest.fixture()
def demo_in_tmp(serve, tmp_path, monkeypatch):
    """The demo daemon started in tmp_path: its datasets go to tmp_path/data."""
    monkeypatch.chdir(tmp_path)
    return serve().addr


def planes(path):
    """A file's image data as {axis: size}, from tifffile's reading of the OME metadata."""
    with tifffile.TiffFile(path) as tf:
        assert tf.is_ome
        series = tf.series[0]
        return dict(zip(series.axes, series.shape)), series.dtype


def test_example_timelapse_runs_and_writes_what_it_planned(demo_in_tmp, tmp_path):
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "timelapse.py"), "--address", demo_in_tmp, "--name", "first-timelapse"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "36 images" in r.stdout
    files = [tmp_path / line.strip() for line in r.stdout.splitlines()
             if re.search(r"\.ome\.tiff?$", line.strip())]
    # One file per stage position, each 3 time points x 2 channels x 3 planes.
    assert len(files) == 2
    for f in files:
        assert f.is_file(), f
        assert f.parent.name == "first-timelapse"
        sizes, dtype = planes(f)
        assert {a: sizes.get(a, 1) for a in "TCZYX"} == {"T": 3, "C": 2, "Z": 3, "Y": 512, "X": 512}
        assert dtype == np.uint16
    # The progress line went to stderr.
    assert "images" in r.stderr


def test_run_plan_with_a_useq_sequence(demo_in_tmp, tmp_path, capsys):
    seq = useq.MDASequence(
        stage_positions=[(100.0, 100.0, 100.0)],
        channels=["DAPI", "GFP"],
        z_plan={"range": 2, "step": 1},
        time_plan={"interval": 0.5, "loops": 2},
    )
    with Microscope(demo_in_tmp) as scope:
        presets = scope.presets()
        assert {"DAPI", "GFP", "mCherry"} <= set(presets["Channel"])

        summary = scope.validate_plan(seq)
        assert summary.events == 2 * 2 * 3 == len(list(seq))
        assert (summary.sizes["t"], summary.sizes["c"], summary.sizes["z"]) == (2, 2, 3)
        assert summary.files == 1
        # One file, open for the whole run when descriptors allow (they do here).
        assert summary.open_files == 1

        status = scope.run_plan(seq, name="useq-run", progress=True)
        assert status.state is State.FINISHED
        assert status.plan is not None
        assert status.plan.events_done == status.plan.events_total == 12
        assert status.received == status.written == 12 and status.dropped == 0
        assert [s.id for s in scope.acquisitions()][-1] == status.id
        assert scope.acquisition(status.id).state is State.FINISHED
        # The dry run refuses what the run would: the name is taken now.
        with pytest.raises(mc.AlreadyExists, match="useq-run"):
            scope.validate_plan(seq, "useq-run")
        with pytest.raises(mc.AlreadyExists, match="useq-run"):
            scope.start_plan(seq, "useq-run")
    assert "useq-run" in capsys.readouterr().err
    (f,) = status.files
    sizes, _ = planes(tmp_path / f)
    assert {a: sizes.get(a, 1) for a in "TCZ"} == {"T": 2, "C": 2, "Z": 3}


def test_every_plan_form_validates_alike(demo_in_tmp, tmp_path):
    yaml_text = (EXAMPLES / "timelapse.yaml").read_text()
    plan = {
        "axis_order": "tpcz",
        "stage_positions": [{"x": 0, "y": 0, "z": 100, "name": "center"},
                            {"x": 500, "y": -300, "z": 100, "name": "corner"}],
        "channels": [{"config": "DAPI", "exposure": 20}, {"config": "GFP", "exposure": 20}],
        "time_plan": {"interval": 2, "loops": 3},
        "z_plan": {"range": 2, "step": 1},
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    with Microscope(demo_in_tmp) as scope:
        forms = [plan, json.dumps(plan), useq.MDASequence(**plan), yaml_text,
                 EXAMPLES / "timelapse.yaml", str(tmp_path / "plan.json")]
        summaries = [scope.validate_plan(p) for p in forms]
    for s in summaries:
        assert (s.events, s.files, s.used_axes) == (36, 2, "tpcz")
        assert {a: s.sizes[a] for a in "tpcz"} == {"t": 3, "p": 2, "c": 2, "z": 3}


def test_invalid_plan_raises_invalid_argument_naming_the_field(demo_in_tmp):
    with Microscope(demo_in_tmp) as scope:
        with pytest.raises(mc.InvalidArgument, match=r"channels\[1\]"):
            scope.validate_plan({"channels": ["DAPI", "NoSuchPreset"]})
        with pytest.raises(mc.NotFound):
            scope.apply_preset("Channel", "NoSuchPreset")


def test_apply_preset(demo_in_tmp):
    with Microscope(demo_in_tmp) as scope:
        applied = scope.apply_preset("Channel", "GFP")
        assert applied, "a preset applies at least one setting"
        assert all(isinstance(s, mc.Setting) for s in applied)
        assert scope.get("FilterWheel", "label") == "GFP"
        listed = scope.presets()["Channel"]["GFP"]
        assert [(s.device, s.property) for s in applied] == [(s.device, s.property) for s in listed]


def wait_for(run, predicate, limit=30.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = run.status()
        if predicate(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"run {run.id} never got there: {status}")


def test_pause_resume_and_cancel(demo_in_tmp, tmp_path):
    plan = {"channels": ["DAPI"], "time_plan": {"interval": 0.5, "loops": 200}}
    with Microscope(demo_in_tmp) as scope:
        run = scope.start_plan(plan, name="paused")
        assert isinstance(run, mc.Run) and run.name == "paused"
        wait_for(run, lambda s: s.plan is not None and s.plan.events_done >= 2)

        scope.pause(run.id)
        paused = wait_for(run, lambda s: s.state is State.PAUSED)
        # The event in flight may still finish; after that nothing is taken while paused
        # (each wait is three intervals).
        time.sleep(1.5)
        settled = run.status().plan.events_done
        assert settled <= paused.plan.events_done + 1
        time.sleep(1.5)
        assert run.status().plan.events_done == settled

        run.resume()
        wait_for(run, lambda s: s.state is State.RUNNING
                 and s.plan.events_done >= settled + 2)

        final = scope.cancel(run)
        assert final.state is State.STOPPED
        assert final.received == final.written
        assert 4 <= final.written < 200
        # Ended: pausing is refused, with the daemon's reason.
        with pytest.raises(mc.FailedPrecondition):
            run.pause()
    # The file keeps every image taken: one page per image.
    (f,) = final.files
    with tifffile.TiffFile(tmp_path / f) as tf:
        assert len(tf.pages) == final.written
