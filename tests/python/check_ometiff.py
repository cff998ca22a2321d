#!/usr/bin/env python3
"""Validate an OME-TIFF written by microscoped with independent readers.

    check_ometiff.py PATH PLANES WIDTH HEIGHT DTYPE [--sizes T,C,Z]

tifffile: one OME series of the right dtype and frame shape, holding PLANES pages, its axes
naming T (or C/Z) when there is more than one plane, and the pages bit-identical to the series.
ome-types: the OME-XML validates against the 2016-06 schema (`validate=True`), one Image whose
Pixels match, one Plane and a TiffData mapping per page. With --sizes, Pixels' SizeT/SizeC/SizeZ
must be exactly those.

Importable: `check(path, planes, width, height, dtype, sizes=None)` raises AssertionError.
Exit status 0 when every check passes, 1 with the failed check on stderr otherwise.
"""

import argparse
import math
import sys

import numpy as np
import ome_types
import tifffile


def check(path, planes, width, height, dtype, sizes=None):
    dtype = np.dtype(dtype)
    with tifffile.TiffFile(path) as tf:
        assert tf.is_bigtiff, "not a BigTIFF"
        assert tf.is_ome, "tifffile does not see OME-XML in IFD 0"
        assert len(tf.pages) == planes, f"{len(tf.pages)} pages, expected {planes}"
        assert len(tf.series) == 1, f"{len(tf.series)} series, expected 1"
        series = tf.series[0]
        axes, shape = series.axes, series.shape
        assert series.dtype == dtype, f"dtype {series.dtype}, expected {dtype}"
        assert axes.endswith("YX"), f"axes {axes}"
        assert shape[-2:] == (height, width), f"frame shape {shape[-2:]}, expected {(height, width)}"
        # A partially filled series (a run stopped early) has more positions than pages.
        assert math.prod(shape[:-2]) >= planes, f"shape {shape} holds fewer than {planes} planes"
        if planes > 1:
            assert set(axes[:-2]) & set("TCZ"), f"axes {axes} name no T, C or Z"
        data = series.asarray()
        assert data.shape == shape
        for i, page in enumerate(tf.pages):
            assert page.shape == (height, width), f"page {i} shape {page.shape}"
            assert page.compression == 1, f"page {i} is compressed"
        pages = np.stack([p.asarray() for p in tf.pages])
        if math.prod(shape[:-2]) == planes:
            assert np.array_equal(pages.reshape(data.shape), data), "series differs from pages"

    try:
        ome = ome_types.from_tiff(path, validate=True)
    except TypeError as e:
        # xmlschema 4.0-4.3 crash on the OME schema's LightSourceIDKey (a union selector over
        # the Laser/Arc/... substitution group) whenever a document has a light source.
        raise AssertionError(
            f"the schema validator crashed ({e}); xmlschema 4.x cannot validate OME files "
            "with a Laser: install 'xmlschema<4' (or lxml, which ome-types then prefers)"
        ) from e
    assert len(ome.images) == 1, f"{len(ome.images)} images"
    px = ome.images[0].pixels
    assert (px.size_x, px.size_y) == (width, height), f"Pixels {px.size_x}x{px.size_y}"
    assert px.type.value == dtype.name, f"Pixels Type {px.type.value}, expected {dtype.name}"
    assert len(px.planes) == planes, f"{len(px.planes)} Plane elements, expected {planes}"
    mapped = sum(
        td.plane_count if td.plane_count is not None else 1 for td in px.tiff_data_blocks
    )
    assert mapped == planes, f"TiffData maps {mapped} planes, expected {planes}"
    total = px.size_t * px.size_c * px.size_z
    # Every page must land at the (T, C, Z) the XML maps it to in tifffile's series.
    sizes_by_dim = {"T": px.size_t, "C": px.size_c, "Z": px.size_z}
    order = px.dimension_order.value[2:]  # fastest first, e.g. "ZCT"
    for td in px.tiff_data_blocks:
        count = td.plane_count if td.plane_count is not None else 1
        first = {"T": td.first_t, "C": td.first_c, "Z": td.first_z}
        start = sum(first[d] * math.prod(sizes_by_dim[o] for o in order[:k]) for k, d in enumerate(order))
        for j in range(count):
            flat, pos = start + j, {}
            for d in order:
                flat, pos[d] = divmod(flat, sizes_by_dim[d])
            if set(axes[:-2]) - set("TCZ"):
                continue
            index = tuple(pos[a] for a in axes[:-2])
            assert np.array_equal(data[index], pages[td.ifd + j]), (
                f"page {td.ifd + j} is not at T,C,Z {pos['T']},{pos['C']},{pos['Z']} of the series"
            )
    assert total >= planes, f"SizeT*SizeC*SizeZ = {total} < {planes}"
    if sizes is not None:
        got = (px.size_t, px.size_c, px.size_z)
        assert got == tuple(sizes), f"(SizeT, SizeC, SizeZ) = {got}, expected {tuple(sizes)}"
    return {"axes": axes, "shape": shape, "sizes": (px.size_t, px.size_c, px.size_z)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("path")
    p.add_argument("planes", type=int)
    p.add_argument("width", type=int)
    p.add_argument("height", type=int)
    p.add_argument("dtype", choices=["uint8", "uint16"])
    p.add_argument("--sizes", help="expected SizeT,SizeC,SizeZ")
    a = p.parse_args(argv)
    sizes = tuple(int(v) for v in a.sizes.split(",")) if a.sizes else None
    try:
        info = check(a.path, a.planes, a.width, a.height, a.dtype, sizes)
    except AssertionError as e:
        print(f"FAIL {a.path}: {e}", file=sys.stderr)
        return 1
    print(f"OK {a.path}: axes {info['axes']} shape {info['shape']} (T,C,Z) {info['sizes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
