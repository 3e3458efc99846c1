#!/bin/sh
# Keep ctest -V readable: pass through ctest's own lines, Criterion's summary,
# skip and failure lines, and golden results; drop per-test chatter.  The
# exit status comes from ctest's summary line: no summary, or anything
# short of 100%, is a failure.
set -u
status=1 # until ctest's summary says every test passed
while IFS= read -r line; do
        case "$line" in
        *"tests passed"*"tests failed out of"*)
                echo "$line"
                case "$line" in 100%*) status=0 ;; *) status=1 ;; esac ;;
        *"Test #"*|*"Start "*|*"[====]"*|*SKIP*|*FAIL*|*"[----]"*|*"golden "*|*"The following tests"*|*"Failed"*|*"Errors while running"*|*"ERROR"*|*"runtime error"*|*"Sanitizer"*)
                echo "$line" ;;
        esac
done
exit $status
