"""The compression settings as command-line flags: one per BuildSettings knob, the same flags
for a build (over the defaults) and a reindex (over the current settings)."""

from __future__ import annotations

import argparse
from typing import Literal, get_args, get_origin

from vecdial._internal import KNOBS, flat_changes


def add_settings_flags(parser: argparse.ArgumentParser, show_defaults: bool) -> None:
    """One flag per BuildSettings knob (`settings.KNOBS`), typed and explained by its field.

    Every flag defaults to None (not given), so the same flags serve a build (over the
    defaults) and a reindex (over the current settings).
    """
    groups = {
        False: parser.add_argument_group("compression settings"),
        True: parser.add_argument_group("sparse codes", "any of these turns sparse codes on"),
    }
    for knob in KNOBS:
        help_text = knob.info.description or ""
        if show_defaults:
            default = knob.info.default
            if knob.annotation is bool:
                default = "on" if default else "off"
            help_text += f" (default {'automatic' if default is None else default})"
        options: dict = {"dest": knob.name, "default": None, "help": help_text.replace("%", "%%")}
        if knob.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif get_origin(knob.annotation) is Literal:
            options["choices"] = list(get_args(knob.annotation))
        else:  # `int | None` takes an int
            options["type"] = next((t for t in get_args(knob.annotation) if t is not type(None)), knob.annotation)
        groups[knob.sparse].add_argument(knob.flag, **options)


def settings_changes(args: argparse.Namespace) -> dict:
    """The settings flags given, as `BuildSettings.changed` takes them."""
    return flat_changes({knob.name: getattr(args, knob.name) for knob in KNOBS})
