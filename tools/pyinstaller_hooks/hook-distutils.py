"""distutils, for build_app.spec: replaces PyInstaller's hook.

That hook also asks for setuptools' vendored copy (setuptools._distutils) whenever
setuptools is installed in the build environment. build_app.spec excludes setuptools and
bundles the standard library's own distutils (Python 3.11), so that request could only
end in a "Hidden import 'setuptools._distutils' not found" warning. What remains is the
part the standard library's distutils needs: sysconfig's build-time variables.
"""

import sysconfig

hiddenimports = [sysconfig._get_sysconfigdata_name()]
