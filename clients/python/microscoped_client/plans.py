"""Turning what a script holds as a plan into a `PlanRequest`.

The daemon parses and validates plans itself (useq JSON or YAML, exactly as useq-schema writes
them) and names the field at fault; this module only picks the right field of the request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Union

from ._proto.microscoped.v1 import acquisition_pb2 as apb

if TYPE_CHECKING:
    import useq

#: A plan: a useq.MDASequence, a dict of its keys, useq JSON or YAML text, a path to a .json,
#: .yaml or .yml file, or the API's own `MdaSequence` message.
Plan = Union["useq.MDASequence", Mapping[str, Any], str, "os.PathLike[str]", apb.MdaSequence]

_SUFFIXES = {".json": "useq_json", ".yaml": "useq_yaml", ".yml": "useq_yaml"}


def plan_request(plan: Plan, name: str = "", camera: str = "") -> apb.PlanRequest:
    """The request that sends `plan` to the daemon."""
    request = apb.PlanRequest(name=name, camera=camera)
    if isinstance(plan, apb.MdaSequence):
        request.sequence.CopyFrom(plan)
    elif hasattr(plan, "model_dump_json"):
        # A useq.MDASequence (duck-typed, so useq stays optional). Only the keys the script
        # set: what it meant, and no keys a newer useq may add that this daemon doesn't know.
        request.useq_json = plan.model_dump_json(exclude_unset=True)
    elif isinstance(plan, Mapping):
        request.useq_json = json.dumps(plan)
    elif isinstance(plan, str) and _is_json(plan):
        # Checked before paths: a one-line JSON plan is not a file name.
        request.useq_json = plan
    elif isinstance(plan, os.PathLike) or (isinstance(plan, str) and _is_path(plan)):
        path = Path(plan)
        field = _SUFFIXES.get(path.suffix.lower())
        if field is None:
            raise ValueError(f"{path}: a plan file ends in .json, .yaml or .yml")
        setattr(request, field, path.read_text(encoding="utf-8"))
    elif isinstance(plan, str):
        # Any other text is YAML; the daemon parses it and reports errors with line numbers.
        request.useq_yaml = plan
    else:
        raise TypeError("a plan is a useq.MDASequence, a dict, useq JSON or YAML text, or a "
                        f"path to a .json/.yaml file; not {type(plan).__name__}")
    return request


def _is_path(text: str) -> bool:
    """A one-line string naming a plan file (even a missing one: reading it says so)."""
    if "\n" in text or not text.strip():
        return False
    if Path(text).suffix.lower() in _SUFFIXES:
        return True
    try:
        return Path(text).is_file()
    except OSError:  # e.g. a one-line YAML plan too long to be a file name
        return False


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
