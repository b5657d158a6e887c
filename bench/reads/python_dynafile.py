"""bench/reads/python_dynafile.py: the original Python dynafile (0.1.3) as a
peer of the read benchmark (bench/reads.lua), one phase per process.

    python3 bench/reads/python_dynafile.py SOURCE WORKLOAD DIR

SOURCE is the directory holding its package (`dynafile/__init__.py`);
WORKLOAD is `load` (the data set of bench/reads/phase.lua, written with its
batch writer one partition at a time: it rewrites a whole partition file
per batch, so the canonical order would take minutes) or `scan_lua` (a
full scan with a Python callable as the filter, `score > 899`).  The clock
runs from before the database object is made to the end of the workload.
Prints the same line as phase.lua:
    ok UNITS CHECK CPU_SECONDS WALL_SECONDS PEAK_RSS_KB ANON_KB FILE_KB
       MINOR_FAULTS MAJOR_FAULTS
Needs Debian's python3-sortedcontainers and python3-atomicwrites.
"""
import gc
import os
import sys
import time

N = int(os.environ.get("BENCH_ITEMS", "100000"))
PARTITIONS = 1000


def make_item(i):
    return {
        "PK": "user#%d" % (i % PARTITIONS),
        "SK": "item#%08d" % i,
        "name": "name %d" % i,
        "score": i % 1000,
        "tags": ["tag%d" % (i % 7), "tag%d" % (i % 11)],
        "payload": chr(97 + i % 26) * 100,
    }


def status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def faults():
    try:
        with open("/proc/self/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[7]), int(rest[9])
    except (OSError, IndexError, ValueError):
        return 0, 0


def load(Dynafile, path):
    db = Dynafile(path, pk_attribute="PK", sk_attribute="SK")
    for p in range(PARTITIONS):
        with db.batch_writer() as w:
            for i in range(p, N, PARTITIONS):
                w.put_item(item=make_item(i))
    return N, N


def scan_lua(Dynafile, path):
    db = Dynafile(path, pk_attribute="PK", sk_attribute="SK")
    count = 0
    for item in db.scan(lambda item: item["score"] > 899):
        if item["score"] > 899:
            count += 1
    return N, count


def main():
    source, workload, path = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.path.insert(0, source)
    from dynafile import Dynafile

    fn = {"load": load, "scan_lua": scan_lua}[workload]
    gc.collect()
    w0, c0 = time.time(), time.process_time()
    units, check = fn(Dynafile, path)
    c1, w1 = time.process_time(), time.time()
    minflt, majflt = faults()
    print("ok %d %s %.6f %.6f %d %d %d %d %d" % (units, check, c1 - c0, w1 - w0,
                                                status_kb("VmHWM"), status_kb("RssAnon"),
                                                status_kb("RssFile"), minflt, majflt))


if __name__ == "__main__":
    main()
