#!/usr/bin/env python3
"""Where a bgpd run's CPU went, per thread, from a `perf record` file:
samples grouped by symbol into the parts of the receive path (docs/
performance.md, "Where each 10 ms goes").

    benches/perf-groups.py PERF.DATA HZ [START,END]

HZ is the sampling frequency given to `perf record -F`; START,END (perf's
seconds) limits the window, as `perf report --time` does. Prints each
thread's samples as milliseconds of CPU by group, and the symbols that
fell in no group."""
import collections
import re
import subprocess
import sys

GROUPS = [
    ("prefix trie", r"prefix_trie"),
    ("RIB: update, decision, policy, attributes", r"bgpd::rib|PathAttrs|Interner|hashbrown|ipnet"),
    ("controller and batching", r"bgpd::controller|bgpd::daemon"),
    ("decode (codec)", r"bgpd::wire|nom::"),
    ("peer task, framing", r"bgpd::session|bgpd::fsm"),
    ("FIB (state, netlink encoding)", r"bgpd::fib"),
    ("channels, tokio", r"tokio::|futures"),
    ("malloc/free, copies", r"malloc|free|_int_|cfree|memmove|memcpy|memset|consolidate"),
    ("kernel: socket reads", r"tcp_|skb|sock_|copy_|_copy|recv|inet_|ip_|netif|net_rx|__dev"),
    ("kernel: page faults", r"page|fault|folio|pte|mem_cgroup|memcg|zone|lru|mprotect|mmap"),
    ("kernel: scheduling, wakeups", r"finish_task_switch|spin_unlock|futex|schedule|epoll|wake|rcu|syscall|irq|softirq|clock_gettime|vdso|list_del|user_mode|rseq|perf_"),
]


def group(sym):
    for name, rx in GROUPS:
        if re.search(rx, sym):
            return name
    return "other"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    data, hz = sys.argv[1], float(sys.argv[2])
    cmd = ["perf", "script", "-i", data, "-F", "comm,time,ip,sym", "-G"]
    if len(sys.argv) == 4:
        cmd += ["--time", sys.argv[3]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    by = collections.defaultdict(collections.Counter)
    other = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+[\d.]+:\s+[0-9a-f]+\s+(.*)$", line)
        if not m:
            continue
        g = group(m.group(2))
        by[m.group(1)][g] += 1
        if g == "other":
            other[m.group(2)] += 1
    for comm, c in sorted(by.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(c.values())
        print(f"{comm}: {total} samples, {total / hz * 1000:.0f} ms of CPU")
        for name, n in c.most_common():
            print(f"  {name:44s} {n / hz * 1000:7.1f} ms")
    print("not grouped:", ", ".join(f"{s} ({n})" for s, n in other.most_common(8)))


if __name__ == "__main__":
    main()
