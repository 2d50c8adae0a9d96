"""``archspec predict RUN_DIR|CHECKPOINT IMAGE...``: classify images with a trained network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from archspec.commands import add_which


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "predict",
        help="classify images with a trained run",
        description="Print the most probable classes of each image (PNG, "
        "JPEG, … via Pillow) and of each image inside an IDX file, normalised "
        "as in training.",
    )
    p.add_argument("target", type=Path, metavar="RUN_DIR|CHECKPOINT")
    p.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="image files or IDX files of images"
    )
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes per image (default 3)")
    add_which(p)
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from archspec.outputs.predict import predict

    results = predict(args.target, args.images, top=args.top, which=args.which, device=args.device)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for result in results:
            print(result.text())
    return 0
