#!/bin/sh
# Run every test binary given; print each one's cmocka summary; fail if any failed.
status=0
for t in "$@"; do
  echo "=== $t"
  CMOCKA_MESSAGE_OUTPUT=stdout "$t"
  rc=$?
  if [ $rc -ne 0 ]; then echo "FAILED: $t (exit $rc)"; status=1; fi
done
if [ $status -eq 0 ]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
exit $status
