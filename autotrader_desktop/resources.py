"""The app's own files (icon, desktop entry), found the same way from source and packaged.

From source they are in the repository's `resources/`; in the packaged app, in
`_internal/resources/` (build_app.spec bundles them). No Qt here: the window builds its
`QIcon` from these paths, e.g.

    icon = QIcon()
    for size, png in resources.icon_pngs().items():
        icon.addFile(str(png), QSize(size, size))
    icon.addFile(str(resources.icon_path()))          # the SVG, for every other size
"""

from __future__ import annotations

from pathlib import Path

from autotrader_desktop.paths import bundle_dir

ICON_NAME = "autotrader-desktop"  # also the desktop entry's Icon= and file name
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def resources_dir() -> Path:
    return bundle_dir() / "resources"


def icon_path() -> Path:
    """The application icon as SVG (scalable; needs Qt's svg image format plugin)."""
    return resources_dir() / "icons" / f"{ICON_NAME}.svg"


def icon_pngs() -> dict[int, Path]:
    """The application icon rendered at each of ICON_SIZES, {size: PNG path}, those present."""
    icons = resources_dir() / "icons"
    found = {size: icons / f"{ICON_NAME}-{size}.png" for size in ICON_SIZES}
    return {size: path for size, path in found.items() if path.is_file()}


def desktop_entry_path() -> Path:
    """The freedesktop `.desktop` entry (its Exec= is filled in at install time)."""
    return resources_dir() / f"{ICON_NAME}.desktop"
