"""Make `dvc plots show` / `dvc plots diff` pages that draw every chart with no network.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN. `make plots-assets` (part of
`make setup`) runs `python -m plots.offline` from the project root, which

1. takes one browser bundle of the three libraries from the pinned vl-convert-python package,
2. writes plots/build/offline.html (ignored by Git): the committed plots/template.html with that
   bundle inlined at its marker,
3. points this checkout's DVC at it with `dvc config --local plots.html_template ...`;
   .dvc/config.local is DVC's per-checkout config file, ignored by Git, and wins over .dvc/config.

On a fresh clone .dvc/config points at the committed plots/template.html instead: its pages show the
pictures and, in place of each chart, a note saying what to run. Nothing generated is committed.
"""

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

TEMPLATE = Path("plots/template.html")
OFFLINE_TEMPLATE = Path("plots/build/offline.html")
MARKER = "<!-- offline-libraries -->"
# DVC's plot templates are Vega-Lite v5 specs: bundle the v5 line so they compile without warnings.
VEGA_LITE_VERSION = "5.21"
# DVC replaces these (with str.replace) anywhere in the template, inlined code included.
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")


def javascript_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed as one classic script that sets window.vega, vegaLite, vegaEmbed."""
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)


def inline(template: str, bundle: str, origin: str = "") -> str:
    """The template with the bundle in a <script> at its marker."""
    if template.count(MARKER) != 1:
        raise ValueError(f"the template must hold the marker {MARKER!r} exactly once")
    for placeholder in DVC_PLACEHOLDERS:
        if placeholder in bundle:
            raise ValueError(f"the JavaScript holds {placeholder!r}, which DVC would replace")
    # "</script" would end the element early; "<\/script" means the same in any JavaScript string or regex.
    bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE)
    # A function scope keeps the bundle's top-level names from clashing with the `var spec` of DVC's chart scripts.
    script = f"<script>/* {origin} */\n(() => {{\n{bundle}\n}})();\n</script>"
    return template.replace(MARKER, script)


def build(template: Path = TEMPLATE, output: Path = OFFLINE_TEMPLATE) -> Path:
    origin = f"Vega, Vega-Lite {VEGA_LITE_VERSION} and Vega-Embed from vl-convert-python {version('vl-convert-python')}"
    page = inline(template.read_text(encoding="utf8"), javascript_bundle(), origin)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf8")
    tmp.replace(output)
    return output


def use_in_dvc(template: Path = OFFLINE_TEMPLATE) -> None:
    """Set plots.html_template in .dvc/config.local (DVC reads a relative path from .dvc/)."""
    setting = Path("..") / template
    subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", str(setting)], check=True)


def main() -> None:
    output = build()
    use_in_dvc(output)
    print(f"plots: wrote {output} ({output.stat().st_size // 1024} KiB); `dvc plots show` now draws charts offline")


if __name__ == "__main__":
    main()
