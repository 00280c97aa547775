#!/bin/sh
# test_install.sh - `make install` into temporary prefixes, then build programs against the result
# with nothing but `pkg-config --cflags --libs dia` and run them. Run from the repository root,
# normally through `make test-install` (which passes MAKE, BUILD, VERSION, ABI, DIA_PRELOAD).
#
#   A. staged install: make install PREFIX=/opt/libdia DESTDIR=$tmp/stage
#      - the installed tree (header, libdia.so.<ABI> with soname, libdia.so symlink, libdia.a,
#        dia.pc, bin/dia), dia.pc naming the final prefix and not the staging directory;
#      - pkg-config with PKG_CONFIG_SYSROOT_DIR: a program built from the staged tree runs.
#   B. plain install: make install PREFIX=$tmp/prefix
#      - examples/simple.c built with pkg-config against it, run on the tiny fixtures -> a WAV;
#      - the same program linked statically (pkg-config --static) runs without libdia.so.
set -u
MAKE=${MAKE:-make}
BUILD=${BUILD:-build}
CC=${CC:-cc}
VERSION=${VERSION:-$(sed -n 's/^#define DIA_VERSION_STRING "\(.*\)".*/\1/p' include/dia.h)}
ABI=${ABI:-$(sed -n 's/^#define DIA_ABI_VERSION \([0-9]*\).*/\1/p' include/dia.h)}
DIA_PRELOAD=${DIA_PRELOAD:-}
DIA_LDFLAGS=${DIA_LDFLAGS:-}   # extra link flags for the static program (-fsanitize=... for SANITIZE=1)
FIX=tests/fixtures/tiny
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
# run a program, with the ASan runtime preloaded when the library was built with SANITIZE=1
run() { if [ -n "$DIA_PRELOAD" ]; then env $DIA_PRELOAD "$@"; else "$@"; fi; }

command -v pkg-config >/dev/null || { echo "FAIL - pkg-config not installed (apt-get install pkg-config)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dia-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# A program that checks the header it was compiled with against the library it runs with.
cat > "$tmp/version.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <dia.h>
int main(void) {
    printf("libdia %s ABI %d\n", dia_version_string(), dia_abi_version());
    return dia_abi_version() != DIA_ABI_VERSION || strcmp(dia_version_string(), DIA_VERSION_STRING) != 0;
}
EOF

# ---- A. staged install ------------------------------------------------------------------------------
stage=$tmp/stage
final=/opt/libdia
if $MAKE --no-print-directory install BUILD="$BUILD" PREFIX="$final" DESTDIR="$stage" > "$tmp/install.log" 2>&1; then
  ok "make install PREFIX=$final DESTDIR=<tmp>/stage"
else
  bad "make install PREFIX=$final DESTDIR=<tmp>/stage failed:"; tail -20 "$tmp/install.log" | sed 's/^/       /'
  echo "INSTALL CHECKS FAILED"; exit 1
fi
r=$stage$final
for f in include/dia.h lib/libdia.so.$ABI lib/libdia.a lib/pkgconfig/dia.pc bin/dia; do
  if [ -f "$r/$f" ]; then ok "installed $f"; else bad "$f not installed"; fi
done
if [ -L "$r/lib/libdia.so" ] && [ "$(readlink "$r/lib/libdia.so")" = "libdia.so.$ABI" ]; then ok "lib/libdia.so -> libdia.so.$ABI"
else bad "lib/libdia.so is not a relative symlink to libdia.so.$ABI"; fi
soname=$(readelf -d "$r/lib/libdia.so.$ABI" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$soname" = "libdia.so.$ABI" ]; then ok "installed library soname $soname"; else bad "installed soname '$soname'"; fi
if [ -x "$r/bin/dia" ]; then ok "bin/dia is executable"; else bad "bin/dia is not executable"; fi
if cmp -s include/dia.h "$r/include/dia.h"; then ok "installed dia.h is include/dia.h"; else bad "installed dia.h differs"; fi
if grep -q "^prefix=$final\$" "$r/lib/pkgconfig/dia.pc" && ! grep -q "$stage" "$r/lib/pkgconfig/dia.pc"; then
  ok "dia.pc names prefix=$final, not the DESTDIR"
else bad "dia.pc prefix is wrong:"; sed 's/^/       /' "$r/lib/pkgconfig/dia.pc"; fi
if grep -q '@' "$r/lib/pkgconfig/dia.pc"; then bad "dia.pc has unsubstituted @VARS@"; else ok "dia.pc fully substituted"; fi

pc() { PKG_CONFIG_PATH="$r/lib/pkgconfig" PKG_CONFIG_LIBDIR="$r/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" pkg-config "$@"; }
mv=$(pc --modversion dia 2>&1)
if [ "$mv" = "$VERSION" ]; then ok "pkg-config --modversion dia = $mv"; else bad "pkg-config --modversion dia = '$mv', expected $VERSION"; fi
flags=$(pc --cflags --libs dia 2>&1)
case "$flags" in
  *"-I$r/include"*"-L$r/lib"*"-ldia"*) ok "pkg-config --cflags --libs dia (sysroot): $flags" ;;
  *) bad "pkg-config --cflags --libs dia gave '$flags'" ;;
esac
# shellcheck disable=SC2086
if $CC -std=c99 -Wall -Werror "$tmp/version.c" -o "$tmp/version_staged" $flags 2>"$tmp/err"; then
  if out=$(LD_LIBRARY_PATH="$r/lib" run "$tmp/version_staged" 2>&1); then ok "program built from the staged tree runs: $out"
  else bad "staged program: $out"; fi
  lib=$(LD_LIBRARY_PATH="$r/lib" ldd "$tmp/version_staged" | awk '/libdia/ {print $3}')
  case "$lib" in "$r/lib/"*) ok "it loads the staged $lib" ;; *) bad "it loads '$lib', not the staged library" ;; esac
else bad "cannot build against the staged tree:"; sed 's/^/       /' "$tmp/err"; fi

# ---- B. plain install, examples/simple.c ----------------------------------------------------------------
p=$tmp/prefix
if $MAKE --no-print-directory install BUILD="$BUILD" PREFIX="$p" > "$tmp/install2.log" 2>&1; then ok "make install PREFIX=<tmp>/prefix"
else bad "make install PREFIX=<tmp>/prefix failed:"; tail -20 "$tmp/install2.log" | sed 's/^/       /'; echo "INSTALL CHECKS FAILED"; exit 1; fi
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
cflags=$(pkg-config --cflags dia)
libs=$(pkg-config --libs dia)
# the private dependencies for a static link: --static --libs minus its own -ldia
slibs=$(pkg-config --static --libs dia | sed -e 's/-ldia\( \|$\)/ /g')
# shellcheck disable=SC2086
if $CC -std=c11 -Wall -Wextra -Werror examples/simple.c -o "$tmp/simple" $cflags $libs 2>"$tmp/err"; then
  ok "examples/simple.c builds with \$(pkg-config --cflags --libs dia)"
  if out=$(LD_LIBRARY_PATH="$p/lib" run "$tmp/simple" "$FIX/dia-hf" "$FIX/dac-hf" "[S1] Hello from the installed library." "$tmp/simple.wav" 7 2>&1); then
    if [ "$(head -c 4 "$tmp/simple.wav" 2>/dev/null)" = RIFF ] && [ "$(wc -c < "$tmp/simple.wav")" -gt 44 ]; then
      ok "installed simple ran on the tiny fixtures: $(echo "$out" | tail -1)"
    else bad "simple ran but $tmp/simple.wav is not a non-empty WAV"; fi
  else bad "installed simple failed:"; echo "$out" | sed 's/^/       /'; fi
  # no rpath into the build tree: without LD_LIBRARY_PATH it must not find the build's libdia.so
  if readelf -d "$tmp/simple" | grep -qE 'RPATH|RUNPATH'; then bad "simple has an rpath: $(readelf -d "$tmp/simple" | grep -E 'RPATH|RUNPATH')"
  else ok "no rpath leaks from dia.pc"; fi
else bad "examples/simple.c does not build against the installed prefix:"; sed 's/^/       /' "$tmp/err"; fi

# static: libdia.a plus Libs.private; the program must not need libdia.so at all
# shellcheck disable=SC2086
if $CC -std=c11 -Wall -Werror examples/simple.c -o "$tmp/simple_static" $cflags -L"$p/lib" -Wl,-Bstatic -ldia -Wl,-Bdynamic $slibs $DIA_LDFLAGS 2>"$tmp/err"; then
  if readelf -d "$tmp/simple_static" | grep -q 'libdia\.so'; then bad "static build still needs libdia.so"
  elif out=$(run "$tmp/simple_static" "$FIX/dia-hf" "$FIX/dac-hf" "[S1] Hello from the installed library." "$tmp/static.wav" 7 2>&1) \
       && [ "$(head -c 4 "$tmp/static.wav" 2>/dev/null)" = RIFF ]; then
    ok "static link with \$(pkg-config --static --libs dia) runs: $(echo "$out" | tail -1)"
    if [ -f "$tmp/simple.wav" ]; then
      if cmp -s "$tmp/simple.wav" "$tmp/static.wav"; then ok "static and shared builds write the same WAV (same seed)"
      else bad "static and shared builds wrote different WAVs for the same text and seed"; fi
    fi
  else bad "static simple failed:"; echo "$out" | sed 's/^/       /'; fi
else bad "static link with pkg-config --static failed:"; sed 's/^/       /' "$tmp/err"; fi

# the bindings find the installed library through pkg-config alone (no DIA_LIBRARY / DIA_LIB_DIR)
PYTHON=${PYTHON:-python3}
if command -v "$PYTHON" >/dev/null; then
  if out=$(cd bindings/python && env -u DIA_LIBRARY ${DIA_PRELOAD:-} "$PYTHON" -c 'import dia; print(dia.lib().path, dia.version())' 2>&1); then
    case "$out" in
      "$p/lib/"*) ok "python finds the installed libdia through pkg-config: $out" ;;
      *) bad "python loaded '$out', not the library under the prefix" ;;
    esac
  else bad "python: import dia / dia.version() failed:"; echo "$out" | sed 's/^/       /'; fi
else echo "SKIP - python check: $PYTHON not found"; fi
CARGO=${CARGO:-cargo}
if command -v "$CARGO" >/dev/null; then
  # dia-sys's build.rs runs `pkg-config --libs dia`; its unit tests call into the library
  # (SANITIZE=1: only the test binaries get the ASan preload, through a cargo runner)
  runner=CARGO_TARGET_$(uname -m | tr a-z A-Z)_UNKNOWN_LINUX_GNU_RUNNER
  if out=$(cd bindings/rust && env -u DIA_LIB_DIR CARGO_TARGET_DIR="$tmp/cargo" LD_LIBRARY_PATH="$p/lib" \
           MAKEFLAGS= ${DIA_PRELOAD:+"$runner=env RUST_BACKTRACE=0 $DIA_PRELOAD"} "$CARGO" test --offline -p dia-sys 2>&1); then
    ok "cargo test -p dia-sys links the installed libdia through pkg-config"
  else bad "cargo test -p dia-sys against the installed prefix failed:"; echo "$out" | tail -20 | sed 's/^/       /'; fi
else echo "SKIP - rust check: $CARGO not found"; fi

# ---- C. uninstall: removes every installed file and nothing else ----------------------------------
touch "$p/lib/keep-me"
if $MAKE --no-print-directory uninstall BUILD="$BUILD" PREFIX="$p" > "$tmp/uninstall.log" 2>&1; then
  left=$(find "$p" -type f ! -name keep-me | sed "s|^$p/||")
  if [ -z "$left" ] && [ -f "$p/lib/keep-me" ]; then ok "make uninstall removed the installed files and kept another"
  else bad "make uninstall left: ${left:-<nothing>} (keep-me $( [ -f "$p/lib/keep-me" ] && echo kept || echo removed))"; fi
else bad "make uninstall failed:"; tail -20 "$tmp/uninstall.log" | sed 's/^/       /'; fi

if [ $fails -eq 0 ]; then echo "INSTALL CHECKS PASSED"; else echo "INSTALL CHECKS FAILED ($fails)"; fi
[ $fails -eq 0 ]
