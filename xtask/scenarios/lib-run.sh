# Sourced by the scenarios that run microvm once with its stderr in a file (dev-9p.sh,
# dev-9p-models.sh).

# run_report STATUS ERRFILE: after a blank line (the guest's console may end mid-line),
# "RUN-STATUS STATUS", then ERRFILE between "== stderr" and "== end", which the tests read
# to check that microvm logged nothing.
run_report() {
    echo
    echo "RUN-STATUS $1"
    echo "== stderr"
    cat "$2"
    echo "== end"
}
