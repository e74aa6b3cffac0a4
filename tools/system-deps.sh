#!/bin/sh
# The system packages AutoTrader Desktop needs on Debian and Ubuntu, shared by `make run`,
# `make test` and `.ci/run`:
#
#   tools/system-deps.sh test      Python's venv, and what Qt needs to run offscreen
#   tools/system-deps.sh run       + everything Qt's xcb and Wayland platform plugins load
#   tools/system-deps.sh package   + binutils and libpython for PyInstaller (make package)
#
# Only what is missing is installed: as root, with apt-get; as anyone else the script
# stops (exit 1) with the exact `sudo apt-get install ...` line to type. On a system
# without dpkg (another distribution, macOS) it checks nothing and says nothing.
set -eu

what=${1:-run}
python=${PYTHON:-python3}

# make itself, for .ci/run on a bare machine; what Qt loads even offscreen; a font. Python's
# venv (ensurepip), which Debian ships apart in python3-venv, is added below when missing.
test_packages="make libgl1 libegl1 libfontconfig1 libfreetype6 libxkbcommon0 libglib2.0-0
    libdbus-1-3 fonts-dejavu-core"
# What Qt's libqxcb.so and libqwayland.so link to (`ldd` of each), by Debian package name.
run_packages="libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-glx0 libxcb-icccm4
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0
    libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1
    libxkbcommon-x11-0 libwayland-client0 libwayland-cursor0 libwayland-egl1"
package_packages="binutils"

case $what in
    test) wanted=$test_packages ;;
    run) wanted="$test_packages $run_packages" ;;
    package) wanted="$test_packages $run_packages $package_packages" ;;
    *)
        echo "usage: $0 [test|run|package]" >&2
        exit 2
        ;;
esac

command -v dpkg-query >/dev/null 2>&1 || exit 0

if ! command -v "$python" >/dev/null 2>&1; then
    wanted="python3 python3-venv $wanted"
elif ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
    wanted="python3-venv $wanted"
fi
if [ "$what" = package ] && command -v "$python" >/dev/null 2>&1 &&
    [ "$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED"))')" != 1 ]; then
    # PyInstaller needs the shared libpython of the Python that builds (Debian packages it
    # apart); a Python built with --enable-shared (pyenv, python.org) has its own.
    wanted="$wanted $("$python" -c 'import sys; print("libpython%d.%d" % sys.version_info[:2])')"
fi

# Every installed package, and the names it provides: Ubuntu 24.04's libglib2.0-0t64
# provides libglib2.0-0. dpkg-query lists removed packages too: only "ok installed" counts.
installed=" $(dpkg-query -W -f='${Status}\t${Package}\t${Provides}\n' 2>/dev/null |
    awk -F '\t' '$1 ~ / ok installed$/ {
        printf "%s ", $2
        n = split($3, provided, ", *")
        for (i = 1; i <= n; i++) { split(provided[i], name, " "); printf "%s ", name[1] }
    }')"
missing=""
for package in $wanted; do
    case $installed in
        *" $package "*) ;;
        *) missing="$missing $package" ;;
    esac
done
missing=${missing# }
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "AutoTrader Desktop needs these system packages, which are not installed: $missing" >&2
    echo "Install them with:" >&2
    echo "    sudo apt-get install $missing" >&2
    exit 1
fi
echo "installing system packages: $missing"
apt-get update -qq
# shellcheck disable=SC2086  # one argument per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
