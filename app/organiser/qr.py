"""The share link as a QR code: inline SVG from segno, drawn in the text colour so it prints."""

from __future__ import annotations

import io

import segno


def qr_svg(url: str, title: str) -> str:
    code = segno.make(url, error="m")
    out = io.BytesIO()
    # No size attributes: the page's CSS sizes it; a quiet zone of 4 modules, as the standard asks.
    code.save(
        out,
        kind="svg",
        xmldecl=False,
        nl=False,
        border=4,
        omitsize=True,
        title=title,
        svgclass="qr",
        dark="#000",
        light="#fff",
    )
    return out.getvalue().decode()
