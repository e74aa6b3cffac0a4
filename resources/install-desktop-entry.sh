#!/bin/sh
# Install (or with --uninstall, remove) the AutoTrader Desktop menu entry and icon for the
# current user, so the app starts by double-click from the desktop's application menu.
#
#   install-desktop-entry.sh [--uninstall] [PATH/TO/autotrader-desktop]
#
# Works from the source tree (resources/, `make install-desktop`) and from inside a built
# bundle (dist/autotrader-desktop/, where the build copies it). Without a path it uses the
# bundle's executable: the one beside this script, else ../dist/autotrader-desktop/.
# Files go under ${XDG_DATA_HOME:-~/.local/share}: applications/ and icons/hicolor/.
set -eu

NAME=autotrader-desktop
here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
apps="$data_home/applications"
icons="$data_home/icons/hicolor"

uninstall=no
if [ "${1:-}" = "--uninstall" ]; then
    uninstall=yes
    shift
fi

refresh() {
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$apps" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$icons" 2>/dev/null || true
    fi
}

if [ "$uninstall" = yes ]; then
    rm -f "$apps/$NAME.desktop" "$icons"/*/apps/"$NAME".png "$icons/scalable/apps/$NAME.svg"
    refresh
    echo "removed the $NAME menu entry and icons from $data_home"
    exit 0
fi

# Where the desktop file and icons are: in a bundle, _internal/resources; from source, here.
if [ -f "$here/_internal/resources/$NAME.desktop" ]; then
    resources="$here/_internal/resources"
elif [ -f "$here/$NAME.desktop" ]; then
    resources="$here"
else
    echo "error: cannot find $NAME.desktop next to $0" >&2
    exit 1
fi

if [ $# -ge 1 ]; then
    exe=$1
elif [ -x "$here/$NAME" ]; then
    exe="$here/$NAME"
else
    exe="$here/../dist/$NAME/$NAME"
fi
if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then
    echo "error: $exe is not an executable; build the app first (make package)" >&2
    exit 1
fi
exe=$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")
case "$exe" in
    *[\ \"\'\\\$\`]*)
        # The Exec key would need quoting rules that desktops apply inconsistently.
        echo "error: the path $exe contains spaces or quotes; move the app elsewhere" >&2
        exit 1
        ;;
esac

mkdir -p "$apps" "$icons/scalable/apps"
for png in "$resources"/icons/"$NAME"-*.png; do
    size=${png##*-}
    size=${size%.png}
    mkdir -p "$icons/${size}x${size}/apps"
    cp "$png" "$icons/${size}x${size}/apps/$NAME.png"
done
cp "$resources/icons/$NAME.svg" "$icons/scalable/apps/$NAME.svg"
sed -e "s|^Exec=.*|Exec=$exe|" -e "s|^TryExec=.*|TryExec=$exe|" \
    "$resources/$NAME.desktop" > "$apps/$NAME.desktop.tmp"
chmod 644 "$apps/$NAME.desktop.tmp"
mv "$apps/$NAME.desktop.tmp" "$apps/$NAME.desktop"
refresh
echo "installed $apps/$NAME.desktop (runs $exe) and icons in $icons"
