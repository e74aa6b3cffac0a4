"""pyqtgraph, for build_app.spec: replaces pyinstaller-hooks-contrib's hook.

That hook imports every pyqtgraph submodule to find the Qt-binding-specific UI templates,
pyqtgraph.opengl included, which needs PyOpenGL: not installed (the app draws no 3-D), so
every build warned "Failed to collect submodules for 'pyqtgraph.opengl'". Here the
submodules that need what the app does not ship are skipped; the rest is the same.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules
from PyInstaller.utils.hooks.qt import exclude_extraneous_qt_bindings

# examples: starts a QApplication on import; opengl: PyOpenGL; jupyter: jupyter_rfb.
SKIPPED = ("pyqtgraph.examples", "pyqtgraph.opengl", "pyqtgraph.jupyter")

datas = collect_data_files("pyqtgraph", excludes=["**/examples/*"])
hiddenimports = [
    name
    for name in collect_submodules("pyqtgraph", filter=lambda name: not name.startswith(SKIPPED))
    if "Template" in name
]
# pyqtgraph's multiprocessing support, run by the contrib runtime hook.
hiddenimports += ["pyqtgraph.multiprocess.bootstrap"]
excludedimports = exclude_extraneous_qt_bindings(hook_name="hook-pyqtgraph", qt_bindings_order=None)
