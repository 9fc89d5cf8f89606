#!/usr/bin/env bash
# Install this QuantBench bundle for the current user: the `quantbench` command, the menu entry, the icon
# and the AppStream metainfo. build.sh copies this script next to dist/QuantBench/quantbench.
#
#   ./install.sh                 # into ~/.local
#   PREFIX=/usr/local ./install.sh   # for everyone (as root)
#   ./install.sh --uninstall
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-$HOME/.local}
id=org.quantbench.QuantBench
sizes="16 24 32 48 64 128 256 512"

if [[ "${1:-}" == "--uninstall" ]]; then
    rm -f "$prefix/bin/quantbench" "$prefix/share/applications/$id.desktop" "$prefix/share/metainfo/$id.metainfo.xml" \
        "$prefix/share/icons/hicolor/scalable/apps/$id.svg"
    for n in $sizes; do rm -f "$prefix/share/icons/hicolor/${n}x${n}/apps/$id.png"; done
    echo "QuantBench removed from $prefix"
    exit 0
fi

mkdir -p "$prefix/bin" "$prefix/share/applications" "$prefix/share/metainfo" "$prefix/share/icons"
ln -sfn "$here/quantbench" "$prefix/bin/quantbench"
# The entry runs this bundle's executable by its full path (quoted: the path may hold spaces).
sed -e "s|^Exec=quantbench|Exec=\"$here/quantbench\"|" -e "s|^TryExec=quantbench|TryExec=$here/quantbench|" \
    "$here/$id.desktop" > "$prefix/share/applications/$id.desktop"
cp "$here/$id.metainfo.xml" "$prefix/share/metainfo/"
cp -r "$here/_internal/resources/icons/hicolor" "$prefix/share/icons/"
# Menus and icon caches pick the new files up at once where these tools exist; elsewhere at the next login.
command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
echo "QuantBench installed in $prefix: run 'quantbench', or find it in the applications menu"
