"""`Microscope`: a connection to a microscoped daemon, with one method per common task."""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import grpc
import numpy as np

from ._proto.microscoped.v1 import access_pb2 as xpb
from ._proto.microscoped.v1 import access_pb2_grpc as xpb_grpc
from ._proto.microscoped.v1 import acquisition_pb2 as apb
from ._proto.microscoped.v1 import acquisition_pb2_grpc as apb_grpc
from ._proto.microscoped.v1 import microscope_pb2 as pb
from ._proto.microscoped.v1 import microscope_pb2_grpc as pb_grpc
from .errors import AcquisitionFailed, MicroscopedError, Unavailable, from_rpc_error
from .models import (
    AcquisitionStatus,
    Device,
    Frame,
    Instrument,
    PlanSummary,
    PyValue,
    Setting,
    State,
    from_value,
    pixels_of,
    position_of,
    to_value,
)
from .plans import Plan, plan_request

#: Called with each status while waiting for an acquisition.
ProgressCallback = Callable[[AcquisitionStatus], None]

#: An acquisition: its id (0: the most recent), or anything with an `id` (a Run, a status).
AcquisitionId = Union[int, "Run", AcquisitionStatus]

# Extra time for calls that wait on hardware or files, over the daemon's own limits: applying
# a preset waits up to 30 s for wheels and turrets to arrive; stopping an acquisition waits for
# its files to be finished.
_PRESET_SETTLE_S = 30.0
_FINISH_FILES_S = 120.0


class Microscope:
    """A connection to a microscoped daemon.

        with Microscope("127.0.0.1:50051") as scope:
            scope.move("XY", 100, -50)
            image = scope.snap()

    Connecting asks the daemon for its devices, so a wrong address, token or certificate
    fails here, not at the first command. Every failed request raises a `MicroscopedError`
    (a subclass per kind: `NotFound`, `InvalidArgument`, ...) with the daemon's message.

    Args:
        address: HOST:PORT of the daemon.
        token: sent as `authorization: Bearer TOKEN` with every request. Without `tls_ca` it
            travels in the clear: use it so only on a trusted network or loopback.
        tls_ca: path to the PEM certificate(s) of the authority that signed the daemon's
            certificate; the connection then uses TLS.
        timeout: seconds to wait for an answer to a request; calls that wait on hardware
            (snap, move with wait, presets) or on files (cancel) add their own time to it.
    """

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        token: Optional[str] = None,
        tls_ca: Union[str, Path, None] = None,
        timeout: float = 10.0,
    ) -> None:
        self.address = address
        self.timeout = timeout
        # Images are bigger than gRPC's default 4 MB message limit.
        options = [("grpc.max_receive_message_length", -1)]
        if tls_ca is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self._channel = grpc.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        # Per-call metadata rather than call credentials: gRPC refuses those on plaintext
        # channels, and a daemon on loopback may well take a token without TLS.
        self._metadata: Tuple[Tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._scope = pb_grpc.MicroscopeStub(self._channel)
        self._acq = apb_grpc.AcquisitionStub(self._channel)
        self._access = xpb_grpc.AccessStub(self._channel)
        try:
            # ListDevices reads no hardware, so UNAVAILABLE here means no daemon, not a device.
            self.devices()
        except Unavailable as e:
            self._channel.close()
            raise Unavailable(f"no microscoped daemon answers at {address}: {e}", e.code) from None
        except BaseException:
            self._channel.close()
            raise

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, method: Any, request: Any, timeout: Optional[float] = None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            # `from None`: the daemon's message says it all; gRPC's own traceback is noise.
            raise from_rpc_error(e) from None

    @property
    def channel(self) -> grpc.Channel:
        """The gRPC channel, for the generated stubs in `microscoped_client.proto`; pass
        `metadata=scope.metadata` with each call when using a token."""
        return self._channel

    @property
    def metadata(self) -> Tuple[Tuple[str, str], ...]:
        return self._metadata

    def close(self) -> None:
        """Closes the connection. Acquisitions go on: they belong to the daemon."""
        self._channel.close()

    def __enter__(self) -> "Microscope":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the control lease ----------------------------------------------------------------
    #
    # On a shared instrument, changing hardware or starting an acquisition needs the lease:
    # one user at a time holds it, and it ends unless renewed. `with scope.lease():` takes it
    # and keeps it renewed from a background thread until the block ends.

    def whoami(self) -> Tuple[str, str]:
        """(user, role) as the daemon sees this connection."""
        r = self._call(self._access.WhoAmI, xpb.WhoAmIRequest())
        return r.user, xpb.Role.Name(r.role).removeprefix("ROLE_").lower()

    def take_lease(self, ttl_s: int = 60) -> Any:
        """Takes (or, if already yours, renews) the lease for `ttl_s` seconds. Raises
        `FailedPrecondition` naming the holder when someone else has it."""
        return self._call(self._access.AcquireLease, xpb.AcquireLeaseRequest(ttl_s=ttl_s))

    def renew_lease(self) -> Any:
        """Extends your lease by its time to live (the heartbeat)."""
        return self._call(self._access.RenewLease, xpb.RenewLeaseRequest())

    def release_lease(self) -> None:
        """Gives the lease back."""
        self._call(self._access.ReleaseLease, xpb.ReleaseLeaseRequest())

    @contextlib.contextmanager
    def lease(self, ttl_s: int = 60) -> Iterator[Any]:
        """Holds the lease for the block, renewing it every third of `ttl_s`; released at the
        end. If the script dies, the lease expires by itself after `ttl_s`."""
        held = self.take_lease(ttl_s)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(max(ttl_s / 3, 0.5)):
                try:
                    self.renew_lease()
                except MicroscopedError as e:
                    # Broken by an admin or expired: the next command will say so.
                    print(f"microscoped: lease lost: {e}", file=sys.stderr)
                    return

        beat = threading.Thread(target=heartbeat, name="microscoped-lease", daemon=True)
        beat.start()
        try:
            yield held
        finally:
            stop.set()
            beat.join()
            with contextlib.suppress(MicroscopedError):
                self.release_lease()

    # -- devices and properties -----------------------------------------------------------

    def instrument(self) -> Instrument:
        """The instrument: its name, the daemon's version, its devices, pixel size, objective."""
        return Instrument.from_proto(self._call(self._scope.GetInstrument, pb.GetInstrumentRequest()))

    def devices(self) -> List[Device]:
        """The devices with their kind, driver and health."""
        reply = self._call(self._scope.ListDevices, pb.ListDevicesRequest())
        return [Device.from_proto(d) for d in reply.devices]

    def get(self, device: str, prop: str) -> Optional[PyValue]:
        """Reads a property: `scope.get("Camera", "exposure_ms")`."""
        reply = self._call(self._scope.GetProperty, pb.GetPropertyRequest(device=device, property=prop))
        return from_value(reply.value)

    def set(self, device: str, prop: str, value: PyValue) -> Optional[PyValue]:
        """Writes a property and returns the value read back: `scope.set("Laser488", "on", True)`.

        The daemon checks the type and limits; an int is accepted for a float property.
        """
        request = pb.SetPropertyRequest(device=device, property=prop, value=to_value(value))
        return from_value(self._call(self._scope.SetProperty, request).value)

    # -- stages ---------------------------------------------------------------------------

    def move(
        self,
        stage: str,
        x: float,
        y: Optional[float] = None,
        *,
        relative: bool = False,
        wait: bool = True,
        wait_timeout_s: float = 60.0,
    ) -> Union[float, Tuple[float, ...]]:
        """Moves a stage to `x` (a focus drive) or to (`x`, `y`) (an XY stage), in µm.

        With `wait` (the default) it returns once the stage has arrived, with where it is;
        otherwise at once, with where it was when the move started. `relative` moves by the
        distance instead.
        """
        target = [float(x)] if y is None else [float(x), float(y)]
        method = self._scope.MoveRelative if relative else self._scope.MoveAbsolute
        started = self._call(method, pb.MoveRequest(device=stage, position_um=target))
        if not wait:
            return position_of(started)
        self.wait_for_idle(stage, wait_timeout_s)
        return self.position(stage)

    def wait_for_idle(self, device: str, timeout_s: float = 60.0) -> None:
        """Waits until a stage or state device stops moving (`DeadlineExceeded` after
        `timeout_s`)."""
        request = pb.WaitForIdleRequest(device=device, timeout_ms=max(1, round(timeout_s * 1000)))
        self._call(self._scope.WaitForIdle, request, timeout=timeout_s + self.timeout)

    def position(self, stage: str) -> Union[float, Tuple[float, ...]]:
        """Where a stage is, in µm: one number for a focus drive, (x, y) for an XY stage."""
        return position_of(self._call(self._scope.GetPosition, pb.DeviceRef(device=stage)))

    # -- camera ---------------------------------------------------------------------------

    def snap(self, camera: str = "", exposure_ms: Optional[float] = None) -> np.ndarray:
        """Takes one image and returns its pixels, shape (height, width), uint8 or uint16.

        `camera` may be left out when the instrument has one; `exposure_ms` applies to this
        image only. `snap_with_metadata` also returns exposure, time and stage positions.
        """
        return self.snap_with_metadata(camera, exposure_ms).pixels

    def snap_with_metadata(self, camera: str = "", exposure_ms: Optional[float] = None) -> Frame:
        """Takes one image; the pixels with the exposure, time, binning and stage positions."""
        request = pb.SnapRequest(camera=camera, exposure_ms=exposure_ms or 0.0)
        # The exposure itself counts against the deadline.
        timeout = self.timeout + (exposure_ms or 0.0) / 1000.0
        return Frame.from_proto(self._call(self._scope.Snap, request, timeout=timeout))

    def live(
        self, camera: str = "", *, max_fps: float = 0.0, frames: Optional[int] = None
    ) -> Iterator[Tuple[np.ndarray, Frame]]:
        """The camera's newest frames as they come: (pixels, frame) pairs, pixels a (height,
        width) uint8 or uint16 array and `frame` its metadata (exposure, time, stage positions).

            for image, frame in scope.live(frames=100):
                print(image.mean(), frame.exposure_ms)

        While an acquisition runs on the camera, its frames; otherwise live mode (the camera
        running, nothing written), which starts if you may control the instrument (you hold
        the lease, or are an admin and nobody does) and stops when the last such viewer leaves.
        Without that right you see what others run. Frames are lossy: a slow loop gets fewer,
        never older ones. Ends after `frames` frames, when you break out of the loop, or when
        the daemon shuts down; at most `max_fps` a second (0: as fast as they come).
        """
        request = apb.LiveViewRequest(camera=camera, max_fps=max_fps)
        # No deadline: live view runs until the caller stops reading.
        stream = self._acq.LiveView(request, metadata=self._metadata)
        taken = 0
        try:
            if frames is not None and frames <= 0:
                return
            for image in stream:
                frame = Frame.from_proto(image)
                yield frame.pixels, frame
                taken += 1
                if frames is not None and taken >= frames:
                    return
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            # Leaving the view tells the daemon at once, so live mode stops with its last viewer.
            stream.cancel()

    # -- presets --------------------------------------------------------------------------

    def presets(self) -> Dict[str, Dict[str, List[Setting]]]:
        """The config's presets: {group: {preset: [settings, in the order applied]}}."""
        reply = self._call(self._scope.ListPresets, pb.ListPresetsRequest())
        return {
            g.name: {p.name: [Setting.from_proto(s) for s in p.settings] for p in g.presets}
            for g in reply.groups
        }

    def apply_preset(self, group: str, preset: str) -> List[Setting]:
        """Applies a preset (`scope.apply_preset("Channel", "GFP")`); returns each setting as
        read back. The daemon checks every setting before it applies any."""
        request = pb.ApplyPresetRequest(group=group, preset=preset)
        reply = self._call(self._scope.ApplyPreset, request, timeout=self.timeout + _PRESET_SETTLE_S)
        return [Setting.from_proto(s) for s in reply.applied]

    # -- plans ----------------------------------------------------------------------------

    def validate_plan(self, plan: Plan, name: Optional[str] = None, *, camera: str = "") -> PlanSummary:
        """Checks a plan against the instrument without moving anything and sums it up.

        `plan` is a `useq.MDASequence`, a dict of its keys, useq JSON or YAML text, or the path
        of a .json/.yaml/.yml file. An invalid plan raises `InvalidArgument` naming the field.
        It is `start_plan`'s own check: what `start_plan(plan, name)` would refuse (a plan
        larger than the free disk, a dataset `name` already taken) is refused here alike.
        """
        request = plan_request(plan, name or "", camera)
        return PlanSummary.from_proto(self._call(self._acq.ValidatePlan, request))

    def start_plan(self, plan: Plan, name: Optional[str] = None, *, camera: str = "") -> "Run":
        """Starts a plan as a new dataset `name` (default: named after the time) and returns at
        once. The run belongs to the daemon: it goes on if this script ends."""
        status = self._call(self._acq.StartPlan, plan_request(plan, name or "", camera))
        return Run(self, AcquisitionStatus.from_proto(status))

    def run_plan(
        self,
        plan: Plan,
        name: Optional[str] = None,
        *,
        camera: str = "",
        progress: Union[bool, ProgressCallback, None] = None,
    ) -> AcquisitionStatus:
        """Runs a plan and waits until it ends; returns the final status (`.files`: where the
        data is). Ctrl-C cancels the run (keeping what was taken) and re-raises.

        `progress=True` prints a progress line to stderr; a function is called with each
        status. Raises `AcquisitionFailed` if the run fails.
        """
        run = self.start_plan(plan, name, camera=camera)
        try:
            return run.wait(progress)
        except KeyboardInterrupt:
            run.cancel()
            raise

    # -- acquisitions ---------------------------------------------------------------------

    def acquisition(self, id: AcquisitionId = 0) -> AcquisitionStatus:
        """An acquisition's status (0: the most recent)."""
        return AcquisitionStatus.from_proto(self._call(self._acq.GetAcquisition, _ref(id)))

    def acquisitions(self) -> List[AcquisitionStatus]:
        """Every acquisition you may read, oldest first: the datasets in the data root when the
        daemon started, then every run since."""
        reply = self._call(self._acq.ListAcquisitions, apb.ListAcquisitionsRequest())
        return [AcquisitionStatus.from_proto(s) for s in reply.acquisitions]

    def pause(self, id: AcquisitionId) -> AcquisitionStatus:
        """Pauses a plan between two images; intervals count again from the resume."""
        return AcquisitionStatus.from_proto(self._call(self._acq.PauseAcquisition, _ref(id)))

    def resume(self, id: AcquisitionId) -> AcquisitionStatus:
        """Resumes a paused plan."""
        return AcquisitionStatus.from_proto(self._call(self._acq.ResumeAcquisition, _ref(id)))

    def cancel(self, id: AcquisitionId) -> AcquisitionStatus:
        """Stops an acquisition and returns its final status once its files are finished; they
        keep what was taken."""
        reply = self._call(self._acq.StopAcquisition, _ref(id), timeout=self.timeout + _FINISH_FILES_S)
        return AcquisitionStatus.from_proto(reply)

    def read_plane(
        self,
        id: AcquisitionId = 0,
        plane: Optional[int] = None,
        *,
        t: Optional[int] = None,
        c: Optional[int] = None,
        z: Optional[int] = None,
        position: int = 0,
    ) -> np.ndarray:
        """One plane of an acquisition's dataset as a (height, width) uint8/uint16 array,
        finished or still being written; any dataset `acquisitions()` lists.

        Address it by `plane` (its index in the file, from 0, in the order written) or by
        `t`, `c` and `z` (each from 0; those left out are 0). `position` picks a plan's file:
        its index in `status.files` (stage position p, grid tile g: p * tiles + g).

        Raises `OutOfRange` for a plane not (yet) written or coordinates outside the data,
        `NotFound` for one the run never took, `InvalidArgument` for a position the dataset
        does not have or for `plane` given with coordinates.
        """
        request = apb.ReadPlaneRequest(id=_ref(id).id, position=position)
        if t is not None or c is not None or z is not None:
            if plane is not None:
                raise ValueError("give either plane or t/c/z, not both")
            request.coords.CopyFrom(apb.PlaneCoords(t=t or 0, c=c or 0, z=z or 0))
        else:
            request.plane = plane or 0
        return pixels_of(self._call(self._acq.ReadPlane, request))

    def watch(self, id: AcquisitionId) -> Iterator[AcquisitionStatus]:
        """An acquisition's status now, then at each change (at most 4 a second), ending with
        its final status."""
        # No deadline: a plan may run for days.
        stream = self._acq.WatchAcquisition(_ref(id), metadata=self._metadata)
        try:
            for status in stream:
                yield AcquisitionStatus.from_proto(status)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            stream.cancel()

    def wait(self, id: AcquisitionId, progress: Union[bool, ProgressCallback, None] = None) -> AcquisitionStatus:
        """Waits until an acquisition ends and returns its final status; raises
        `AcquisitionFailed` if it failed. `progress` as for `run_plan`."""
        report = ProgressLine() if progress is True else (progress or None)
        last: Optional[AcquisitionStatus] = None
        try:
            for last in self.watch(id):
                if report is not None:
                    report(last)
        finally:
            if isinstance(report, ProgressLine):
                report.end()
        if last is None or not last.ended:
            # The stream closed early (e.g. the daemon is shutting down): ask once more.
            last = self.acquisition(last.id if last is not None else id)
            if not last.ended:
                raise MicroscopedError(f"acquisition {last.id} is {last.state.value}, but the daemon "
                                       "stopped reporting on it")
        if last.state is State.FAILED:
            raise AcquisitionFailed(last)
        return last


class Run:
    """A plan started by `Microscope.start_plan`: follow, pause, resume or cancel it."""

    def __init__(self, scope: Microscope, started: AcquisitionStatus) -> None:
        self.scope = scope
        #: The status when it started.
        self.started = started
        self.id = started.id
        self.name = started.name

    def __repr__(self) -> str:
        return f"Run(id={self.id}, name={self.name!r})"

    def status(self) -> AcquisitionStatus:
        return self.scope.acquisition(self.id)

    def wait(self, progress: Union[bool, ProgressCallback, None] = None) -> AcquisitionStatus:
        """Waits until the run ends; see `Microscope.wait`."""
        return self.scope.wait(self.id, progress)

    def watch(self) -> Iterator[AcquisitionStatus]:
        return self.scope.watch(self.id)

    def pause(self) -> AcquisitionStatus:
        return self.scope.pause(self.id)

    def resume(self) -> AcquisitionStatus:
        return self.scope.resume(self.id)

    def cancel(self) -> AcquisitionStatus:
        return self.scope.cancel(self.id)

    def read_plane(
        self,
        plane: Optional[int] = None,
        *,
        t: Optional[int] = None,
        c: Optional[int] = None,
        z: Optional[int] = None,
        position: int = 0,
    ) -> np.ndarray:
        """One plane of this run's dataset; see `Microscope.read_plane`."""
        return self.scope.read_plane(self.id, plane, t=t, c=c, z=z, position=position)


def _ref(id: AcquisitionId) -> apb.AcquisitionRef:
    return apb.AcquisitionRef(id=id if isinstance(id, int) else id.id)


class ProgressLine:
    """A progress callback (what `progress=True` uses): prints an acquisition's progress as
    one line on stderr, rewritten in place on a terminal (a line per change otherwise, e.g. in
    a log). Call `end()` when done."""

    def __init__(self) -> None:
        self._open = False
        self._last = ""

    def __call__(self, s: AcquisitionStatus) -> None:
        line = format_progress(s)
        if line == self._last:
            return
        self._last = line
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K" + line)
            self._open = True
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self._open:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self._open = False
        self._last = ""


def format_progress(s: AcquisitionStatus) -> str:
    """One line: `mda-1 running 17/36 images  t 2/3  p 1/2 A1  c GFP  z 2/3  0:12 left`."""
    head = f"{s.name} {s.state.value}"
    p = s.plan
    if p is None:
        planned = s.frames_planned or "?"
        return f"{head} {s.written}/{planned} frames  {s.dropped} dropped"
    parts = [f"{head} {p.events_done}/{p.events_total} images"]
    sizes = p.summary.sizes if p.summary is not None else {}
    axes = p.summary.used_axes if p.summary is not None else ""
    for axis in axes:
        if axis == "c" and p.channel:
            parts.append(f"c {p.channel}")
        elif axis == "p" and p.position_name:
            parts.append(f"p {p.current['p'] + 1}/{sizes.get('p', '?')} {p.position_name}")
        elif axis in p.current:
            parts.append(f"{axis} {p.current[axis] + 1}/{sizes.get(axis, '?')}")
    if not s.ended:
        parts.append(f"{_clock(p.time_left_s)} left")
    if p.late_events:
        parts.append(f"{p.late_events} late (max {p.max_late_s:.1f} s)")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    m, sec = divmod(max(0, round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02}:{sec:02}" if h else f"{m}:{sec:02}"
