"""The Prometheus endpoint of the daemon binary, scraped during and after an acquisition and
read with the reference OpenMetrics parser (prometheus_client): its numbers are the ones the
gRPC status RPCs report, and every RPC made is counted with its code."""

import time
import urllib.request

import grpc
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

W, H = 128, 96


def config(tmp_path, root):
    path = tmp_path / "instrument.toml"
    path.write_text(f"""
[instrument]
name = "py-metrics"

[server]
anonymous_loopback_admin = true

[metrics]
listen = "127.0.0.1:0"

[storage]
data_root = "{root}"
ring_mb = 4

[devices.Camera]
driver = "sim.camera"
width = {W}
height = {H}
exposure_ms = 5.0
readout_ms = 1.0
pattern = "ramp"

[devices.Laser488]
driver = "sim.laser"
wavelength_nm = 488.0
""")
    return path


class Scrape:
    """One scrape, parsed: every sample by its name and labels."""

    def __init__(self, url):
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
            text = reply.read().decode()
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for family in self.families.values():
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def value(self, metric, /, **labels):
        key = (metric, frozenset(labels.items()))
        assert key in self.samples, \
            f"no {metric}{labels} in {sorted(k for k in self.samples if k[0] == metric)}"
        return self.samples[key]

    def labelled(self, metric, /, **match):
        """Every sample of `metric` whose labels include `match`, as {labels: value}."""
        return {
            labels: v
            for (n, labels), v in self.samples.items()
            if n == metric and set(match.items()) <= labels
        }

    def rpcs(self, method, code, service=None):
        """Calls of `method` that ended with `code`, from the histogram's _count."""
        found = self.labelled(
            "microscoped_grpc_server_handling_seconds_count", grpc_method=method, grpc_code=code
        )
        if service:
            found = {k: v for k, v in found.items() if ("grpc_service", service) in k}
        return sum(found.values())


def run_labels(status):
    return dict(id=str(status.id), name=status.name, owner=status.owner, camera=status.camera)


def test_metrics_match_the_grpc_status_during_and_after_an_acquisition(tmp_path, serve, pb):
    msgs, svcs = pb
    d = serve(config(tmp_path, tmp_path / "data"))
    assert d.metrics and d.metrics.endswith("/metrics"), d.metrics
    ch = grpc.insecure_channel(d.addr)
    scope, acq, access = svcs.MicroscopeStub(ch), svcs.AcquisitionStub(ch), svcs.AccessStub(ch)
    calls = {}

    def call(stub_method, request, name):
        calls[name] = calls.get(name, 0) + 1
        return stub_method(request, timeout=30)

    first = Scrape(d.metrics)
    assert first.families["microscoped_build"].type == "info"
    assert list(first.labelled("microscoped_build_info", version="0.1.0").values()) == [1]
    assert first.value("microscoped_lease_held", holder="") == 0
    assert first.value("microscoped_ring_slots", camera="Camera") == 0
    for device, kind in [("Camera", "camera"), ("Laser488", "laser")]:
        labels = dict(device=device, kind=kind, driver=f"sim.{kind}")
        assert first.value("microscoped_device_up", **labels) == 1
        assert first.value("microscoped_device_faults_total", **labels) == 0

    # One deliberate refusal, and the lease taken.
    with pytest.raises(grpc.RpcError) as refused:
        call(scope.GetProperty, msgs.GetPropertyRequest(device="Nope", property="x"), "GetProperty")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    lease = call(access.AcquireLease, msgs.AcquireLeaseRequest(ttl_s=600), "AcquireLease")
    assert Scrape(d.metrics).value("microscoped_lease_held", holder=lease.holder) == 1

    # During the run: each scraped counter lies between the statuses read before and after.
    started = call(acq.StartSequence, msgs.StartSequenceRequest(until_stopped=True, name="scraped"),
                   "StartSequence")
    deadline = time.monotonic() + 60
    while call(acq.GetAcquisition, msgs.AcquisitionRef(id=started.id), "GetAcquisition").written < 5:
        assert time.monotonic() < deadline, "the acquisition never wrote 5 frames"
        time.sleep(0.01)
    before = call(acq.GetAcquisition, msgs.AcquisitionRef(id=started.id), "GetAcquisition")
    during = Scrape(d.metrics)
    after = call(acq.GetAcquisition, msgs.AcquisitionRef(id=started.id), "GetAcquisition")
    live = call(acq.GetLiveStatus, msgs.LiveStatusRequest(), "GetLiveStatus")
    labels = run_labels(started)
    for field in ["received", "written"]:
        scraped = during.value(f"microscoped_acquisition_frames_{field}_total", **labels)
        assert getattr(before, field) <= scraped <= getattr(after, field), (field, before, after)
    assert during.value("microscoped_acquisition_running", **labels) == 1
    assert during.value("microscoped_ring_slots", camera="Camera") == live.ring_slots > 0
    assert during.value("microscoped_ring_bytes", camera="Camera") == live.ring_bytes > 0
    assert 0 <= during.value("microscoped_ring_slots_used", camera="Camera") <= live.ring_slots

    # After it: the final counters exactly, the ring gone.
    stopped = call(acq.StopAcquisition, msgs.AcquisitionRef(id=started.id), "StopAcquisition")
    final = call(acq.GetAcquisition, msgs.AcquisitionRef(id=started.id), "GetAcquisition")
    assert final.received == final.written + final.dropped and final.written >= 5
    end = Scrape(d.metrics)
    assert end.value("microscoped_acquisition_frames_received_total", **labels) == final.received
    assert end.value("microscoped_acquisition_frames_written_total", **labels) == final.written
    assert end.value("microscoped_acquisition_frames_dropped_total", **labels) == final.dropped
    assert end.value("microscoped_acquisition_frames_lost_in_camera_total", **labels) == \
        final.dropped_in_camera
    assert end.value("microscoped_acquisition_written_bytes_total", **labels) == final.bytes
    assert end.value("microscoped_acquisition_running", **labels) == 0
    assert stopped.state == msgs.ACQUISITION_STATE_STOPPED
    assert end.value("microscoped_ring_slots", camera="Camera") == 0

    # A device that faults: down, counted, and up again after a reset, as ListDevices says.
    call(scope.SetProperty, msgs.SetPropertyRequest(device="Laser488", property="sim_fault",
                                                    value=msgs.Value(string_value="error")),
         "SetProperty")
    with pytest.raises(grpc.RpcError) as faulted:
        call(scope.GetLaserState, msgs.DeviceRef(device="Laser488"), "GetLaserState")
    assert faulted.value.code() == grpc.StatusCode.UNAVAILABLE
    laser = dict(device="Laser488", kind="laser", driver="sim.laser")
    devices = call(scope.ListDevices, msgs.ListDevicesRequest(), "ListDevices").devices
    (listed,) = [x for x in devices if x.name == "Laser488"]
    assert listed.health == msgs.DEVICE_HEALTH_FAULTED
    down = Scrape(d.metrics)
    assert down.value("microscoped_device_up", **laser) == 0
    assert down.value("microscoped_device_faults_total", **laser) == 1
    call(scope.ResetDevice, msgs.ResetDeviceRequest(device="Laser488"), "ResetDevice")
    up = Scrape(d.metrics)
    assert up.value("microscoped_device_up", **laser) == 1
    assert up.value("microscoped_device_faults_total", **laser) == 1

    # Every call made is counted once, with its code; nothing else called the daemon.
    codes = {"GetProperty": "NOT_FOUND", "GetLaserState": "UNAVAILABLE"}
    for method, n in calls.items():
        assert up.rpcs(method, codes.get(method, "OK")) == n, (method, n)
    assert up.rpcs("GetProperty", "OK") == 0
    assert up.rpcs("AcquireLease", "OK", service="microscoped.v1.Access") == 1
    # The histogram's buckets are cumulative and end with +Inf at the count.
    buckets = up.labelled("microscoped_grpc_server_handling_seconds_bucket",
                          grpc_method="StartSequence", grpc_code="OK")
    assert buckets[frozenset(dict(grpc_service="microscoped.v1.Acquisition", grpc_method="StartSequence",
                                  grpc_code="OK", le="+Inf").items())] == 1
    ch.close()


def test_a_made_up_method_counts_as_unknown_and_an_unauthenticated_call_by_its_code(tmp_path, serve, pb):
    msgs, svcs = pb
    path = config(tmp_path, tmp_path / "data")
    # No anonymous access: a call without a token is refused before any service sees it.
    path.write_text(path.read_text().replace("anonymous_loopback_admin = true", """
[users.tech]
role = "admin"
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
"""))
    d = serve(path)
    ch = grpc.insecure_channel(d.addr)
    with pytest.raises(grpc.RpcError) as refused:
        svcs.MicroscopeStub(ch).GetInstrument(msgs.GetInstrumentRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    made_up = ch.unary_unary("/microscoped.v1.Microscope/NoSuchMethod" + "x" * 100)
    with pytest.raises(grpc.RpcError):
        made_up(b"", timeout=10)
    ch.close()
    s = Scrape(d.metrics)
    assert s.rpcs("GetInstrument", "UNAUTHENTICATED", service="microscoped.v1.Microscope") == 1
    assert not s.labelled("microscoped_grpc_server_handling_seconds_count",
                          grpc_method="NoSuchMethod" + "x" * 100)
    assert sum(s.labelled("microscoped_grpc_server_handling_seconds_count",
                          grpc_service="unknown", grpc_method="unknown").values()) == 1
