"""Live frames in the Python client: numpy arrays with their metadata, from live mode when no
acquisition runs, ending when the caller stops reading (and live mode with it)."""

import time

import numpy as np

from microscoped_client import Frame, Microscope
from microscoped_client.proto import apb


def live_mode(scope):
    status = scope._call(scope._acq.GetLiveStatus, apb.LiveStatusRequest())
    return apb.LiveMode.Name(status.mode), status


def test_live_yields_numpy_frames_without_an_acquisition_and_stops_with_the_reader(daemon):
    with Microscope(daemon) as scope:
        assert scope.acquisitions() == []
        scope.set("Camera", "exposure_ms", 5)
        seen = []
        for image, frame in scope.live(frames=5):
            assert isinstance(image, np.ndarray) and isinstance(frame, Frame)
            assert image.shape == (512, 512) and image.dtype == np.uint16
            assert image is frame.pixels
            assert frame.camera == "Camera" and frame.exposure_ms == 5.0
            assert image.max() > 0
            seen.append(frame.time_unix_us)
            if len(seen) == 1:
                mode, status = live_mode(scope)
                assert mode == "LIVE_MODE_LIVE" and status.viewers == 1, status
        assert len(seen) == 5 and seen == sorted(seen)
        # Nothing was written, and with the reader gone the camera stops and its ring is freed.
        assert scope.acquisitions() == []
        deadline = time.monotonic() + 30
        while True:
            mode, status = live_mode(scope)
            if mode == "LIVE_MODE_OFF" and status.viewers == 0:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert status.ring_bytes == 0

        # Breaking out of the loop leaves the view too.
        for image, _ in scope.live(max_fps=20):
            break
        assert image.shape == (512, 512)
