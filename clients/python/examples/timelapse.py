"""A first time-lapse: runs a useq plan (by default timelapse.yaml, next to this script) and
prints where the files are.

    python timelapse.py --name first-timelapse
    python timelapse.py --address 10.0.0.5:50051 --plan my-plan.yaml

The daemon writes one OME-TIFF per stage position into a new dataset folder under its data
root; the paths printed are on the daemon's machine (relative ones are relative to the folder
the daemon was started in).
"""

import argparse
import os
import sys
from pathlib import Path

from microscoped_client import AcquisitionFailed, Microscope, MicroscopedError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=os.environ.get("MICROSCOPED_ADDR", "127.0.0.1:50051"),
                        help="the daemon, HOST:PORT (default: $MICROSCOPED_ADDR or %(default)s)")
    parser.add_argument("--name", help="dataset name (default: named after the time)")
    parser.add_argument("--plan", default=Path(__file__).with_name("timelapse.yaml"),
                        help="a useq plan, .yaml or .json (default: timelapse.yaml)")
    args = parser.parse_args()

    try:
        with Microscope(args.address) as scope:
            # Check the plan first: the daemon names any field it cannot do, and says what
            # the run amounts to before anything moves.
            summary = scope.validate_plan(args.plan)
            sizes = ", ".join(f"{axis} {summary.sizes[axis]}" for axis in summary.used_axes)
            print(f"{summary.events} images ({sizes}) into {summary.files} files, "
                  f"{summary.bytes / 1e6:.1f} MB, at least {summary.duration_s:.0f} s")
            for warning in summary.warnings:
                print(f"warning: {warning}")

            status = scope.run_plan(args.plan, name=args.name, progress=True)
    except AcquisitionFailed as e:
        print(f"error: {e}", file=sys.stderr)
        print("what was taken before the failure is in:", *e.status.files, sep="\n  ", file=sys.stderr)
        return 1
    except MicroscopedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    print(f"{status.state.value}: {status.written} images written, {status.dropped} dropped, "
          f"in {status.elapsed_s:.1f} s")
    print("files (on the daemon's machine):", *status.files, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
