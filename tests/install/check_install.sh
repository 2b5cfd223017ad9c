#!/usr/bin/env bash
# check_install.sh — driven by the CTest test `install_pkgconfig`.
#
# Installs the current build into a temporary prefix, then checks what a
# downstream user would rely on:
#   1. the files are there: header, libgalvani.a, libgalvani.so.<ver> with the
#      libgalvani.so.0 / libgalvani.so links, galvani.pc;
#   2. the shared library's SONAME is libgalvani.so.0;
#   3. pkg-config finds the package and reports the project version;
#   4. tests/install/consumer.c compiles with `pkg-config --cflags --libs`,
#      links to the *installed* shared library and runs correctly;
#   5. the same program links statically against libgalvani.a and runs.
#
# Usage (see tests/install/CMakeLists.txt):
#   check_install.sh CMAKE BUILD_DIR LIBDIR INCLUDEDIR CC READELF PKG_CONFIG
#                    CONSUMER_C VERSION [EXTRA_CFLAGS...]
# EXTRA_CFLAGS are the sanitizer flags of an ASan/UBSan build (empty otherwise).
set -euo pipefail

if [ "$#" -lt 9 ]; then
    echo "usage: $0 CMAKE BUILD_DIR LIBDIR INCLUDEDIR CC READELF PKG_CONFIG CONSUMER_C VERSION [CFLAGS...]" >&2
    exit 2
fi
cmake_bin=$1 build_dir=$2 libdir_rel=$3 includedir_rel=$4 cc=$5 readelf=$6
pkg_config=$7 consumer_c=$8 version=$9
shift 9
extra_cflags=("$@")

fail() { echo "install_pkgconfig: FAIL: $*" >&2; exit 1; }
step() { echo "install_pkgconfig: $*"; }

prefix=$(mktemp -d "${TMPDIR:-/tmp}/galvani-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

step "installing $build_dir into $prefix"
"$cmake_bin" --install "$build_dir" --prefix "$prefix" >"$prefix/install.log" 2>&1 \
    || { cat "$prefix/install.log" >&2; fail "cmake --install failed"; }

libdir=$prefix/$libdir_rel
includedir=$prefix/$includedir_rel
pcdir=$libdir/pkgconfig

# 1. Files.
[ -f "$includedir/galvani/signals.h" ] || fail "missing $includedir/galvani/signals.h"
[ -f "$libdir/libgalvani.a" ] || fail "missing $libdir/libgalvani.a"
[ -f "$libdir/libgalvani.so.$version" ] || fail "missing $libdir/libgalvani.so.$version"
[ -L "$libdir/libgalvani.so.0" ] || fail "missing symlink $libdir/libgalvani.so.0"
[ -L "$libdir/libgalvani.so" ] || fail "missing symlink $libdir/libgalvani.so"
[ -f "$pcdir/galvani.pc" ] || fail "missing $pcdir/galvani.pc"
step "files present (header, libgalvani.a, libgalvani.so.$version + links, galvani.pc)"

# 2. SONAME: consumers record this name, so it must carry the major version.
soname=$("$readelf" -d "$libdir/libgalvani.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libgalvani.so.0" ] || fail "SONAME is '$soname', expected 'libgalvani.so.0'"
step "SONAME $soname"

# 3. pkg-config.  PKG_CONFIG_PATH is searched before the system directories,
# so an older galvani installed on the machine cannot shadow this one.
export PKG_CONFIG_PATH=$pcdir
got_version=$("$pkg_config" --modversion galvani) || fail "pkg-config cannot find galvani"
[ "$got_version" = "$version" ] || fail "pkg-config version '$got_version', expected '$version'"
read -r -a pc_cflags <<<"$("$pkg_config" --cflags galvani)"
read -r -a pc_libs <<<"$("$pkg_config" --libs galvani)"
static_libs=$("$pkg_config" --static --libs galvani)
case " $static_libs " in
    *" -lpthread "*) ;;
    *) fail "pkg-config --static --libs lacks -lpthread: $static_libs" ;;
esac
step "pkg-config: version $got_version, cflags '${pc_cflags[*]}', libs '${pc_libs[*]}'"

# The consumer is compiled strictly: the installed header must be clean under
# the same warnings the project uses, and under -pedantic.  Warnings are
# errors when the build itself treats them so (GALVANI_WERROR, on in CI); in a
# packager's build with another compiler they are shown, not fatal.
strict=(-std=c11 -pedantic -Wall -Wextra -Wshadow -Wstrict-prototypes
        -Wmissing-prototypes)
if [ "${GALVANI_WERROR:-OFF}" = ON ]; then
    strict+=(-Werror)
fi

# 4. Shared: link with exactly what pkg-config says.
"$cc" "${strict[@]}" "${extra_cflags[@]}" "${pc_cflags[@]}" \
    "$consumer_c" -o "$prefix/consumer_shared" "${pc_libs[@]}" \
    || fail "compiling the consumer against the shared library failed"
# Outputs are captured before matching: `cmd | grep -q` under pipefail fails
# at random when grep exits early and cmd dies of SIGPIPE.
dynamic=$("$readelf" -d "$prefix/consumer_shared")
grep -q 'NEEDED.*\[libgalvani\.so\.0\]' <<<"$dynamic" \
    || fail "consumer_shared does not depend on libgalvani.so.0"
# Make sure the loader really picks the freshly installed copy.
resolved=$(LD_LIBRARY_PATH=$libdir ldd "$prefix/consumer_shared")
grep -q "libgalvani\.so\.0 => $libdir/" <<<"$resolved" \
    || fail "consumer_shared does not resolve libgalvani.so.0 from $libdir: $resolved"
LD_LIBRARY_PATH=$libdir "$prefix/consumer_shared" || fail "consumer_shared exited with $?"
step "shared consumer compiled, linked against libgalvani.so.0 and ran"

# 5. Static: the archive alone (plus -lpthread) must be enough.
"$cc" "${strict[@]}" "${extra_cflags[@]}" "${pc_cflags[@]}" \
    "$consumer_c" -o "$prefix/consumer_static" "$libdir/libgalvani.a" -lpthread \
    || fail "compiling the consumer against libgalvani.a failed"
dynamic=$("$readelf" -d "$prefix/consumer_static")
if grep -q 'NEEDED.*libgalvani' <<<"$dynamic"; then
    fail "consumer_static still depends on the shared libgalvani"
fi
"$prefix/consumer_static" || fail "consumer_static exited with $?"
step "static consumer compiled, linked against libgalvani.a and ran"

step "PASS"
