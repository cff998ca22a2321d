"""A Python client generated from proto/ drives the daemon: the interop path scripts take."""

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc


def test_health_check_serving(daemon):
    with grpc.insecure_channel(daemon) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", "microscoped.v1.Microscope"):
            r = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_devices_move_and_snap(daemon, pb):
    msgs, svcs = pb
    opts = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(daemon, options=opts) as ch:
        scope = svcs.MicroscopeStub(ch)
        devices = {d.name: d for d in scope.ListDevices(msgs.ListDevicesRequest(), timeout=5).devices}
        assert devices["XY"].kind == msgs.DEVICE_KIND_XY_STAGE
        assert devices["Camera"].kind == msgs.DEVICE_KIND_CAMERA

        scope.MoveAbsolute(msgs.MoveRequest(device="XY", position_um=[300.0, 200.0]), timeout=5)
        scope.WaitForIdle(msgs.WaitForIdleRequest(device="XY", timeout_ms=10000), timeout=15)
        pos = scope.GetPosition(msgs.DeviceRef(device="XY"), timeout=5)
        assert list(pos.position_um) == [300.0, 200.0]

        scope.SetProperty(
            msgs.SetPropertyRequest(device="Camera", property="binning", value=msgs.Value(int_value=2)),
            timeout=5,
        )
        img = scope.Snap(msgs.SnapRequest(exposure_ms=5.0), timeout=10)
        assert img.pixel_type == msgs.PIXEL_TYPE_U16
        frame = np.frombuffer(img.data, dtype="<u2").reshape(img.height, img.width)
        assert frame.shape == (256, 256)
        assert img.metadata.exposure_ms == 5.0
        assert list(img.metadata.stage_positions["XY"].position_um) == [300.0, 200.0]
        # The camera offset is 100 counts: a real image, not zeros.
        assert 90 < frame.mean() < 400

        with pytest.raises(grpc.RpcError) as err:
            scope.MoveAbsolute(msgs.MoveRequest(device="XY", position_um=[1e7, 0.0]), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "25000" in err.value.details()
