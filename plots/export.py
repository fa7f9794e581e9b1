"""Static export of the DVC plots for reports and CI: `make plots-export` or `python -m plots.export [REV ...]`.

With no revision it exports what `dvc plots show` draws (the workspace); with revisions (commits,
branches, tags or experiment names) what `dvc plots diff REV ...` draws, every revision on the same
charts. Each Vega chart becomes NAME.svg and NAME.png, rendered by vl-convert-python with no browser
and no network, and each picture plot is copied beside them, all in plots/export/ (ignored by Git).
Run it from the project root.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from plots.offline import VEGA_LITE_VERSION

EXPORT_DIR = Path("plots/export")
PNG_SCALE = 2  # pixels per SVG pixel: sharp in a pull request comment or a paper


def dvc_plots(revisions: list[str]) -> dict[str, list[dict]]:
    """`dvc plots show --json` (or `dvc plots diff REV... --json`): plot name -> its filled specs and pictures."""
    command = [sys.executable, "-m", "dvc", "plots", *(["diff", *revisions] if revisions else ["show"]), "--json"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"plots: {' '.join(command[2:])} failed:\n{result.stderr}")
    output = json.loads(result.stdout)
    for error in output.get("errors", []):
        print(f"plots: warning: dvc reports {error}", file=sys.stderr)
    return output.get("data", {})


def file_stem(name: str) -> str:
    """'Learning rate' -> 'learning-rate', 'metrics/predictions.png' -> 'metrics-predictions-png'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def export(plots: dict[str, list[dict]], directory: Path) -> list[Path]:
    import vl_convert

    directory.mkdir(parents=True, exist_ok=True)
    for stale in [*directory.glob("*.svg"), *directory.glob("*.png")]:
        stale.unlink()
    written = []
    for name, entries in plots.items():
        for entry in entries:
            if entry["type"] == "vega":
                spec, stem = entry["content"], directory / file_stem(name)
                svg = vl_convert.vegalite_to_svg(spec, vl_version=VEGA_LITE_VERSION)
                stem.with_suffix(".svg").write_text(svg, encoding="utf8")
                png = vl_convert.vegalite_to_png(spec, vl_version=VEGA_LITE_VERSION, scale=PNG_SCALE)
                stem.with_suffix(".png").write_bytes(png)
                written += [stem.with_suffix(".svg"), stem.with_suffix(".png")]
            elif entry["type"] == "image":
                # DVC has copied the picture of each revision to dvc_plots/REV_PATH.png.
                target = directory / Path(entry["url"]).name
                shutil.copyfile(entry["url"], target)
                written.append(target)
    return written


def main(argv: list[str]) -> None:
    written = export(dvc_plots(argv), EXPORT_DIR)
    if not written:
        sys.exit("plots: nothing to export: run the pipeline first (`make repro`)")
    print("\n".join(f"plots: wrote {path}" for path in written))


if __name__ == "__main__":
    main(sys.argv[1:])
