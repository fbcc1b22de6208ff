"""The report's template engine (Jinja2, autoescaped) and what templates need: filters, images.

Templates live in ``als4gan/report/templates/``; every section renders one of them. Values are
escaped unless a template marks them safe, so run names and configuration values can never
inject markup into the page.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup
from PIL import Image

log = logging.getLogger("als4gan.report.html")

#: Embedded images wider than this are downscaled (keeps the page light).
MAX_EMBED_WIDTH = 1600
#: Embedded PNGs larger than this many bytes are re-encoded as JPEG.
MAX_PNG_BYTES = 1_500_000
#: JPEG quality of embedded photographs (contact sheets, prediction overlays).
JPEG_QUALITY = 88


def slug(text: str) -> str:
    """An HTML id from a run name."""
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower() or "run"


def pct(value: Any, digits: int = 1) -> str:
    """A [0, 1] value as a percentage, or an en dash."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{100 * float(value):.{digits}f}"


def points(value: Any, sign: bool = True) -> str:
    """A difference of [0, 1] values in percentage points (signed), or an en dash."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{100 * float(value):+.1f}" if sign else f"{100 * float(value):.1f}"


def data_uri(data: bytes, photo: bool = False) -> str:
    """``data:`` URI of PNG/JPEG bytes, downscaled or re-encoded when very large.

    Args:
        data: PNG or JPEG bytes.
        photo: The image is mostly photographs (contact sheets, prediction overlays): embed it
            as JPEG, several times smaller than PNG for imagery (plots stay PNG, sharp).
    """
    mime = "image/png"
    image: Image.Image = Image.open(io.BytesIO(data))
    reencode = photo and image.format != "JPEG"
    if image.width > MAX_EMBED_WIDTH or len(data) > MAX_PNG_BYTES or reencode:
        image = image.convert("RGB")
        if image.width > MAX_EMBED_WIDTH:
            height = round(image.height * MAX_EMBED_WIDTH / image.width)
            image = image.resize((MAX_EMBED_WIDTH, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if reencode or len(data) > MAX_PNG_BYTES:
            image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            mime = "image/jpeg"
        else:
            image.save(buffer, format="PNG")
        data = buffer.getvalue()
    elif image.format == "JPEG":
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def array_uri(array: Any, photo: bool = False) -> str:
    """``data:`` URI of an (H, W[, 3]) ``uint8`` array: PNG, or JPEG (quality 88) for photos."""
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if photo:
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on, undefined is an error)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("als4gan.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update({"pct": pct, "points": points, "slug": slug, "data_uri": data_uri})
    return env


def render(template: str, **context: Any) -> Markup:
    """Render ``templates/<template>`` with ``context`` (the result is safe HTML)."""
    return Markup(environment().get_template(template).render(**context))


def note(text: str) -> Markup:
    """A highlighted remark from plain text (escaped)."""
    return render("note.html", text=text)


def guard(render_section: Callable[[], str], what: str) -> Markup:
    """Run a section renderer; a failure becomes a note in the page instead of no report."""
    try:
        return Markup(render_section())
    except Exception as err:  # the page must still be written; the reason is shown in it
        log.warning("report: %s failed: %s", what, err)
        return note(f"{what} could not be produced: {type(err).__name__}: {err}")
