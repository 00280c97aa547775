#!/bin/sh
# bench/fetch_nari.sh - the original nari-labs/dia code for bench/reference_nari.py, into bench/nari-dia/ (ignored by
# git: a reference to run beside libdia, not part of it; Apache-2.0). The device machine has no network: run this
# here, then pass bench/nari-dia in the device call's carry. Measured at commit 876125e.
#   sh bench/fetch_nari.sh [GIT_DIR]   (GIT_DIR: a local mirror of the repository; default: clone from GitHub)
set -eu
rev=876125e
rm -rf bench/nari-dia && mkdir -p bench/nari-dia
if [ $# -ge 1 ]; then
  git --git-dir="$1" archive "$rev" dia LICENSE | tar -x -C bench/nari-dia
else
  tmp=$(mktemp -d) && git clone -q https://github.com/nari-labs/dia "$tmp/dia" && git -C "$tmp/dia" archive "$rev" dia LICENSE \
    | tar -x -C bench/nari-dia && rm -rf "$tmp"
fi
echo "bench/nari-dia: nari-labs/dia $rev ($(ls bench/nari-dia/dia | tr '\n' ' '))"
