#!/bin/sh
# A settlement batch for galvanid with a fraud score (docs/api.md, "Rules").
#
# It settles BATCHES batches (default 120), one every STEP_MS milliseconds
# (default 250), and after each one reports on stdout:
#
#   ::progress N/BATCHES
#   ::metric fraud_score S
#   ::status settled batch N
#
# The score is low (0.10 .. 0.30) except for two spikes, the same every run:
# batches 30..39 score 0.93 .. 0.97, batches 80..84 score 0.96.  Run it with a
# rule that pauses it on a spike:
#
#   galvani run --name settle --label team=payments \
#       --rule 'pause=metrics.fraud_score > 0.9' -- "$PWD/examples/payments.sh"
#
# The first spike pauses it (galvani show ID lists the firing with the score
# that caused it); a person looks and resumes it (galvani resume ID) while
# the score is still high: the rule does not pause it again, because it fires
# once per rise above the threshold.  The score drops after batch 39 and the
# second spike, at batch 80, pauses it again.
#
#   payments.sh [BATCHES [STEP_MS]]
set -eu
batches=${1:-120}
step_ms=${2:-250}
case $batches$step_ms in *[!0-9]*) echo "usage: payments.sh [BATCHES [STEP_MS]]" >&2; exit 2 ;; esac
pause_s=$(awk -v ms="$step_ms" 'BEGIN { printf "%.3f", ms / 1000 }')

n=0
while [ "$n" -lt "$batches" ]; do
    n=$((n + 1))
    sleep "$pause_s"
    if [ "$n" -ge 30 ] && [ "$n" -le 39 ]; then
        score=$(awk -v n="$n" 'BEGIN { printf "%.2f", 0.93 + (n % 5) / 100 }')
    elif [ "$n" -ge 80 ] && [ "$n" -le 84 ]; then
        score=0.96
    else
        score=$(awk -v n="$n" 'BEGIN { printf "%.2f", 0.10 + (n * 7 % 21) / 100 }')
    fi
    echo "::progress $n/$batches"
    echo "::metric fraud_score $score"
    echo "::status settled batch $n"
done
echo "settled $batches batches"
