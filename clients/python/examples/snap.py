"""Snap one image, print what it holds, and save it if asked.

    python snap.py                          # stats only
    python snap.py -o beads.npy             # numpy's format
    python snap.py -o beads.tif --exposure 50   # a TIFF (needs tifffile)
"""

import argparse
import os
import sys

import numpy as np

from microscoped_client import Microscope, MicroscopedError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=os.environ.get("MICROSCOPED_ADDR", "127.0.0.1:50051"),
                        help="the daemon, HOST:PORT (default: $MICROSCOPED_ADDR or %(default)s)")
    parser.add_argument("--camera", default="", help="the camera (default: the only one)")
    parser.add_argument("--exposure", type=float, help="exposure for this image, ms")
    parser.add_argument("-o", "--output", help="save to a .npy or .tif/.tiff file")
    args = parser.parse_args()

    try:
        with Microscope(args.address) as scope:
            frame = scope.snap_with_metadata(args.camera, exposure_ms=args.exposure)
    except MicroscopedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    image = frame.pixels
    print(f"{frame.camera}: {image.shape[1]} x {image.shape[0]} {image.dtype}, "
          f"{frame.bit_depth}-bit, exposure {frame.exposure_ms} ms")
    print(f"min {image.min()}  max {image.max()}  mean {image.mean():.1f}  "
          f"99.9th percentile {np.percentile(image, 99.9):.0f}")
    for stage, position in frame.stage_positions.items():
        print(f"{stage} at {position} µm")

    if args.output:
        if args.output.endswith((".tif", ".tiff")):
            import tifffile  # only needed for TIFF output

            tifffile.imwrite(args.output, image)
        else:
            np.save(args.output, image)
        print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
