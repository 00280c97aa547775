#!/bin/sh
# test_abi.sh - ABI discipline checks for libdia (policy: docs/abi.md).
#
#   sh tests/test_abi.sh [path/to/libdia.so]      (default: build/lib/libdia.so)
#
# 1. the dynamic symbols that libdia.so defines are exactly tests/abi/symbols.txt, each with the
#    version node LIBDIA_<ABI>;
# 2. the DIA_API functions declared in include/dia.h are exactly tests/abi/symbols.txt;
# 3. the soname is libdia.so.<DIA_ABI_VERSION> and the version node matches it;
# 4. include/dia.h compiles on its own as C99, C11 (-pedantic) and C++11/C++17 with -Werror;
# 5. a program compiled against the header and linked to the library sees the same ABI and
#    version at run time.
# Exits non-zero if any check fails; prints one "ok"/"FAIL" line per check.
set -u
LIB=${1:-build/lib/libdia.so}
CC=${CC:-cc}
CXX=${CXX:-c++}
HDR=include/dia.h
LIST=tests/abi/symbols.txt
fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

for f in "$LIB" "$HDR" "$LIST"; do
  [ -e "$f" ] || { echo "FAIL - $f does not exist"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dia-abi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

abi=$(sed -n 's/^#define DIA_ABI_VERSION \([0-9][0-9]*\).*/\1/p' "$HDR")
ver=$(sed -n 's/^#define DIA_VERSION_STRING "\(.*\)".*/\1/p' "$HDR")
[ -n "$abi" ] && [ -n "$ver" ] || { echo "FAIL - cannot read DIA_ABI_VERSION/DIA_VERSION_STRING from $HDR"; exit 1; }
node="LIBDIA_$abi"

# --- the list itself: "symbol node" lines, sorted, unique, all in the current node ---------------
grep -v '^#' "$LIST" | grep -v '^[[:space:]]*$' > "$tmp/list.raw"
awk '{print $1}' "$tmp/list.raw" > "$tmp/list"
if sort -c "$tmp/list" 2>/dev/null && [ -z "$(uniq -d "$tmp/list")" ]; then ok "$LIST is sorted and unique ($(wc -l < "$tmp/list") symbols)"
else bad "$LIST must be sorted by symbol without duplicates"; fi
badnode=$(awk -v n="$node" 'NF != 2 || $2 != n' "$tmp/list.raw")
if [ -z "$badnode" ]; then ok "every listed symbol is in version node $node"
else bad "lines of $LIST not of the form 'symbol $node':"; echo "$badnode" | sed 's/^/       /'; fi

# --- 1. library exports == list --------------------------------------------------------------------
# nm -D prints "addr T name@@NODE"; the version node itself shows up as an absolute (A) symbol.
nm -D --defined-only "$LIB" > "$tmp/nm" 2>"$tmp/nm.err" || { bad "nm -D $LIB: $(cat "$tmp/nm.err")"; }
awk '$2 != "A" {print $3}' "$tmp/nm" | sort > "$tmp/exported.full"
sed 's/@.*//' "$tmp/exported.full" | sort -u > "$tmp/exported"
unversioned=$(grep -v "@@$node\$" "$tmp/exported.full")
if [ -z "$unversioned" ]; then ok "every exported symbol carries @@$node"
else bad "exported symbols without @@$node:"; echo "$unversioned" | sed 's/^/       /'; fi
extra=$(comm -23 "$tmp/exported" "$tmp/list")
missing=$(comm -13 "$tmp/exported" "$tmp/list")
if [ -z "$extra" ] && [ -z "$missing" ]; then ok "nm -D --defined-only $LIB matches $LIST"
else
  bad "exports of $LIB differ from $LIST"
  [ -n "$extra" ] && { echo "       exported but not in the list (add them, see docs/abi.md):"; echo "$extra" | sed 's/^/         /'; }
  [ -n "$missing" ] && { echo "       listed but not exported by the library (a missing symbol: an ABI break):"; echo "$missing" | sed 's/^/         /'; }
fi
nodes=$(awk '$2 == "A" {print $3}' "$tmp/nm" | tr '\n' ' ')
if [ "$nodes" = "$node " ]; then ok "the only version node is $node"
else bad "version nodes are '$nodes', expected '$node'"; fi

# --- 2. header declarations == list ----------------------------------------------------------------
grep -oE 'DIA_API[^(;]*[ *](dia_[a-z0-9_]+)[[:space:]]*\(' "$HDR" | grep -oE 'dia_[a-z0-9_]+[[:space:]]*\($' \
  | sed -E 's/[[:space:]]*\($//' | sort > "$tmp/header"
hextra=$(comm -23 "$tmp/header" "$tmp/list")
hmissing=$(comm -13 "$tmp/header" "$tmp/list")
if [ -z "$hextra" ] && [ -z "$hmissing" ]; then ok "DIA_API declarations of $HDR match $LIST"
else
  bad "DIA_API declarations of $HDR differ from $LIST"
  [ -n "$hextra" ] && { echo "       declared but not listed:"; echo "$hextra" | sed 's/^/         /'; }
  [ -n "$hmissing" ] && { echo "       listed but no longer declared (ABI break):"; echo "$hmissing" | sed 's/^/         /'; }
fi

# --- 3. soname -------------------------------------------------------------------------------------
soname=$(readelf -d "$LIB" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$soname" = "libdia.so.$abi" ]; then ok "soname is $soname"
else bad "soname is '$soname', expected libdia.so.$abi (DIA_ABI_VERSION in $HDR)"; fi
needed_undef=$(nm -D --undefined-only "$LIB" | awk '{print $NF}' | grep '^dia_' || true)
if [ -z "$needed_undef" ]; then ok "no dia_* symbol is left undefined in $LIB"
else bad "dia_* symbols used but not defined in $LIB:"; echo "$needed_undef" | sed 's/^/       /'; fi

# --- 4. header compiles as C99/C11/C++ with -Werror ------------------------------------------------
cat > "$tmp/hdr.c" <<'EOF'
#include "dia.h"
#include "dia.h" /* include guard */
static int use(void) {
    dia_model *m = 0;
    dia_status st = dia_model_load("x", 0, &m);
    return (int)st + DIA_ABI_VERSION + (int)DIA_LOG_DEBUG + (int)DIA_ENCODE_TRUNCATE + (int)DIA_AUDIO_FLOAT;
}
int main(void) { return use() == -1; }
EOF
cat > "$tmp/hdr.cc" <<'EOF'
#include "dia.h"
#include "dia.h"
static int use() {
    dia_model *m = nullptr;
    dia_status st = dia_model_load("x", nullptr, &m);
    unsigned flags = DIA_ENCODE_TRUNCATE | DIA_AUDIO_FLOAT;
    return static_cast<int>(st) + DIA_ABI_VERSION + static_cast<int>(DIA_LOG_DEBUG) + static_cast<int>(flags);
}
int main() { return use() == -1; }
EOF
WC="-Wall -Wextra -Werror -pedantic -Iinclude"
for std in c99 c11; do
  if $CC -std=$std $WC -Wstrict-prototypes -Wmissing-prototypes -Wshadow -c "$tmp/hdr.c" -o "$tmp/hdr_$std.o" 2>"$tmp/err"; then
    ok "$HDR compiles as $std -pedantic -Werror ($CC)"
  else bad "$HDR does not compile as $std with -Werror:"; sed 's/^/       /' "$tmp/err"; fi
done
for std in c++11 c++17; do
  if $CXX -std=$std $WC -Wold-style-cast -Wzero-as-null-pointer-constant -c "$tmp/hdr.cc" -o "$tmp/hdr_$std.o" 2>"$tmp/err"; then
    ok "$HDR compiles as $std -pedantic -Werror ($CXX)"
  else bad "$HDR does not compile as $std with -Werror:"; sed 's/^/       /' "$tmp/err"; fi
done
# a second compiler family when one is installed (optional: not a build dependency)
if command -v clang >/dev/null && command -v clang++ >/dev/null; then
  if clang -std=c99 $WC -Wstrict-prototypes -c "$tmp/hdr.c" -o "$tmp/hdr_clang.o" 2>"$tmp/err" &&
     clang++ -std=c++11 $WC -Wold-style-cast -Wzero-as-null-pointer-constant -c "$tmp/hdr.cc" -o "$tmp/hdr_clangxx.o" 2>>"$tmp/err"; then
    ok "$HDR compiles with clang (c99) and clang++ (c++11) -pedantic -Werror"
  else bad "$HDR does not compile with clang/clang++:"; sed 's/^/       /' "$tmp/err"; fi
else echo "SKIP - clang/clang++ not installed: header checked with $CC/$CXX only"; fi
# C++ must see C linkage: the object must reference the unmangled name.
if nm "$tmp/hdr_c++11.o" 2>/dev/null | grep -q ' U dia_model_load$'; then ok "C++ sees extern \"C\" (unmangled dia_model_load)"
else bad "C++ translation unit does not reference the unmangled dia_model_load"; fi

# --- 5. runtime versions agree with the header -----------------------------------------------------
cat > "$tmp/rt.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "dia.h"
int main(void) {
    int rc = 0;
    if (dia_abi_version() != DIA_ABI_VERSION) { printf("abi %d != %d\n", dia_abi_version(), DIA_ABI_VERSION); rc = 1; }
    if (strcmp(dia_version_string(), DIA_VERSION_STRING)) { printf("version %s != %s\n", dia_version_string(), DIA_VERSION_STRING); rc = 1; }
    if (strcmp(dia_status_string(DIA_OK), "ok")) { printf("status string of DIA_OK\n"); rc = 1; }
    dia_options *o = NULL;
    if (dia_options_set(o, "threads", "1") != DIA_ERR_INVALID_ARG || !*dia_last_error()) { printf("NULL options not rejected with a message\n"); rc = 1; }
    return rc;
}
EOF
libdir=$(cd "$(dirname "$LIB")" && pwd)
if $CC -std=c99 -Wall -Werror -Iinclude "$tmp/rt.c" -o "$tmp/rt" -L"$libdir" -ldia 2>"$tmp/err"; then
  # DIA_PRELOAD: "LD_PRELOAD=.../libasan.so ..." when the library was built with SANITIZE=1
  if out=$(env ${DIA_PRELOAD:-} LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/rt" 2>&1); then
    ok "runtime dia_abi_version()/dia_version_string() match the header ($ver, ABI $abi)"
  else bad "runtime check: $out"; fi
else bad "cannot link a program against $LIB:"; sed 's/^/       /' "$tmp/err"; fi

if [ $fails -eq 0 ]; then echo "ABI CHECKS PASSED"; else echo "ABI CHECKS FAILED ($fails)"; fi
[ $fails -eq 0 ]
