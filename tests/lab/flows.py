"""The 16 service flows of seed-test.sh's power-cut check: prints the
longest run of unanswered pings of any flow, in ms (pings every 100 ms),
and fails when a flow is not answering at the end.

    python3 tests/lab/flows.py LAB_DIR FIRST  # reads LAB_DIR/flow-N.txt, N = FIRST..FIRST+15
"""
import re
import sys

d, base = sys.argv[1], int(sys.argv[2])
worst = 0
for i in range(base, base + 16):
    text = open(f"{d}/flow-{i}.txt").read()
    m = re.search(r"(\d+) packets transmitted", text)
    sent = int(m.group(1)) if m else 0
    got = {int(s) for s in re.findall(r"icmp_seq=(\d+) ttl=", text)}
    run = gap = 0
    for s in range(1, sent + 1):
        run = 0 if s in got else run + 1
        gap = max(gap, run)
    if sent < 10 or (sent - 2) not in got or (sent - 3) not in got:
        print(f"the flow from .{i} is not answering at the end ({len(got)} of {sent} answered)")
        sys.exit(1)
    worst = max(worst, gap)
print(worst * 100)
