"""Generate the useq-schema fixtures that `src/plan` is tested against.

Each fixture is a plan (useq `MDASequence` JSON, exactly as a script would send it)
and the events the real useq-schema produces for it. The Rust tests expand the same
plan and compare event by event, so the daemon follows useq's iteration semantics
(axis order, acquire_every, do_stack, z_offset, relative/absolute z, grids,
multi-phase time plans, reset_event_timer, keep_shutter_open) rather than our
reading of them.

Run from the repository root:
    .venv/bin/python tests/python/gen_useq_fixtures.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import useq

OUT = Path(__file__).parent / "useq_fixtures"

# name -> (plan as JSON-able dict, fov (width, height) in um or None)
PLANS: dict[str, tuple[dict, list[float] | None]] = {
    "time_lapse": ({"time_plan": {"interval": 0.5, "loops": 5}}, None),
    "positions_channels_z_tpcz": (
        {
            "axis_order": "tpcz",
            "time_plan": {"interval": 2, "loops": 2},
            "stage_positions": [
                {"x": 100.0, "y": 200.0, "z": 10.0, "name": "A1"},
                {"x": -50.5, "y": 20.25, "z": 12.0},
            ],
            "channels": [
                {"config": "DAPI", "exposure": 10},
                {"config": "GFP", "exposure": 20.5},
                {"config": "mCherry", "group": "Filters"},
            ],
            "z_plan": {"range": 2.0, "step": 0.5},
        },
        None,
    ),
    "positions_channels_z_tpzc": (
        {
            "axis_order": ["t", "p", "z", "c"],
            "time_plan": {"interval": 2, "loops": 2},
            "stage_positions": [
                {"x": 100.0, "y": 200.0, "z": 10.0, "name": "A1"},
                {"x": -50.5, "y": 20.25, "z": 12.0},
            ],
            "channels": [
                {"config": "DAPI", "exposure": 10},
                {"config": "GFP", "exposure": 20.5},
            ],
            "z_plan": {"range": 1.0, "step": 0.5},
        },
        None,
    ),
    "grid_rows_columns_tpgcz": (
        {
            "axis_order": "tpgcz",
            "stage_positions": [
                {"x": 1000.0, "y": 2000.0, "z": 5.0},
                {"x": 3000.0, "y": 2500.0, "name": "second"},
            ],
            "grid_plan": {
                "rows": 2,
                "columns": 3,
                "overlap": [10, 5],
                "fov_width": 512.0,
                "fov_height": 256.0,
            },
            "channels": [{"config": "DAPI", "exposure": 5}, "GFP"],
            "z_plan": {"range": 1.0, "step": 1.0},
        },
        [512.0, 256.0],
    ),
    "acquire_every_do_stack_z_offset": (
        {
            "time_plan": {"interval": 1.5, "loops": 4},
            "stage_positions": [{"x": 1.0, "y": 2.0, "z": 3.0}],
            "channels": [
                {"config": "DAPI", "exposure": 10},
                {"config": "GFP", "exposure": 30, "acquire_every": 2},
                {"config": "Brightfield", "do_stack": False, "z_offset": 1.25},
                {"config": "mCherry", "z_offset": -0.5, "acquire_every": 3},
            ],
            "z_plan": {"range": 4.0, "step": 1.0},
        },
        None,
    ),
    "relative_z_positions": (
        {
            "stage_positions": [
                {"x": 10.0, "y": 20.0, "z": 100.0},
                {"x": 11.0, "y": 21.0},
            ],
            "channels": ["GFP"],
            "z_plan": {"relative": [-1.0, 0.0, 2.5]},
        },
        None,
    ),
    "absolute_z_positions": (
        {
            "stage_positions": [
                {"x": 10.0, "y": 20.0, "z": 100.0},
                {"x": 11.0, "y": 21.0},
            ],
            "channels": [{"config": "GFP", "z_offset": 0.5}],
            "z_plan": {"absolute": [50.0, 52.0, 51.0], "go_up": False},
        },
        None,
    ),
    "z_top_bottom": (
        {
            "stage_positions": [{"x": 0.0, "y": 0.0, "z": 1000.0}],
            "channels": [{"config": "DAPI", "exposure": 2, "do_stack": False}, "GFP"],
            "z_plan": {"top": 12.0, "bottom": 10.0, "step": 0.7},
        },
        None,
    ),
    "z_above_below_go_down": (
        {
            "axis_order": "tpzc",
            "stage_positions": [{"x": 5.0, "y": 6.0, "z": 50.0}],
            "channels": ["DAPI", "GFP"],
            "z_plan": {"above": 1.0, "below": 2.0, "step": 0.5, "go_up": False},
        },
        None,
    ),
    "grid_from_edges": (
        {
            "axis_order": "tpgcz",
            "grid_plan": {
                "top": 1000.0,
                "left": -500.0,
                "bottom": 0.0,
                "right": 700.0,
                "overlap": 10,
                "mode": "row_wise",
                "fov_width": 400.0,
                "fov_height": 300.0,
            },
            "channels": [{"config": "DAPI", "exposure": 1}],
        },
        [400.0, 300.0],
    ),
    "multi_phase_time": (
        {
            "time_plan": {
                "phases": [
                    {"interval": 1, "loops": 3},
                    {"interval": "PT5S", "duration": "0:00:12"},
                    {"duration": {"seconds": 4}, "loops": 3},
                ]
            },
            "channels": [{"config": "GFP", "exposure": 100}],
        },
        None,
    ),
    "channels_as_strings_ptc": (
        {
            "axis_order": "ptc",
            "time_plan": {"interval": 0.25, "duration": 0.5},
            "stage_positions": [{"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 2.0, "name": "p2"}],
            "channels": ["DAPI", "GFP"],
        },
        None,
    ),
    "shutter_spiral_grid": (
        {
            "keep_shutter_open_across": ["z", "c"],
            "stage_positions": [{"x": 0.0, "y": 0.0, "z": 0.0}],
            "grid_plan": {
                "rows": 3,
                "columns": 3,
                "mode": "spiral",
                "relative_to": "top_left",
                "fov_width": 100.0,
                "fov_height": 100.0,
            },
            "channels": ["DAPI", "GFP"],
            "z_plan": {"range": 1.0, "step": 1.0},
        },
        [100.0, 100.0],
    ),
    # `interval: 0` is useq's "as fast as possible" (the pymmcore-plus idiom): every time
    # point due at once; here also as a phase between timed ones.
    "as_fast_as_possible": (
        {
            "time_plan": {"interval": 0, "loops": 3},
            "channels": [{"config": "DAPI", "exposure": 5}, "GFP"],
        },
        None,
    ),
    "fast_phase_between_timed_ones": (
        {
            "time_plan": [
                {"interval": 1, "loops": 2},
                {"interval": 0, "loops": 3},
                {"interval": 2, "loops": 2},
            ],
        },
        None,
    ),
    "grid_width_height_column_snake": (
        {
            "stage_positions": [{"x": 100.0, "y": 100.0}],
            "grid_plan": {
                "width": 250.0,
                "height": 150.0,
                "mode": "column_wise_snake",
                "overlap": 20.0,
                "fov_width": 100.0,
                "fov_height": 80.0,
            },
        },
        [100.0, 80.0],
    ),
}


def event_dict(e: useq.MDAEvent) -> dict:
    return {
        "index": {str(k): v for k, v in e.index.items()},
        "channel": (
            None
            if e.channel is None
            else {"config": e.channel.config, "group": e.channel.group}
        ),
        "exposure": e.exposure,
        "x_pos": e.x_pos,
        "y_pos": e.y_pos,
        "z_pos": e.z_pos,
        "min_start_time": e.min_start_time,
        "pos_name": e.pos_name,
        "reset_event_timer": e.reset_event_timer,
        "keep_shutter_open": e.keep_shutter_open,
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (plan, fov) in PLANS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            seq = useq.MDASequence.model_validate_json(json.dumps(plan))
        events = [event_dict(e) for e in seq.iter_events()]
        doc = {
            "name": name,
            "useq_version": _useq_version(),
            "plan": plan,
            "fov": fov,
            "sizes": dict(seq.sizes),
            "events": events,
        }
        (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{name}: {len(events)} events")


def _useq_version() -> str:
    from importlib.metadata import version

    return version("useq-schema")


if __name__ == "__main__":
    main()
