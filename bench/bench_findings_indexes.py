#!/usr/bin/env python3
"""What each index on `findings` is for, and what the indexes cost a write.

The store's schema is built from the migrations in
crates/orbwatch-store/src/migrations.rs (the same SQL text, applied in
order with Python's sqlite3), up to `--schema N`. Then:

- every query the store runs on `findings` (the list's pages and totals
  for each filter, the counts of `/metrics`, the look-ups by id, the
  statements of the triggers) is shown with its `EXPLAIN QUERY PLAN`, and
  for each index the queries that use it;
- `--findings N` findings (default 100,000) are inserted in one
  transaction as `record_hunt` inserts them (the triggers of schema 7
  included), spread over 3 feeds, 4 hunts, 5 severities, scores 0 to 100
  and 28 days, each with a finding JSON of about 2.4 kB; the time is
  printed. A second pass inserts the same ids as a new hunt (every insert
  then also hands `is_latest` over from the older copy).

    python3 bench/bench_findings_indexes.py --schema 9
    python3 bench/bench_findings_indexes.py --schema 10

`.ci/run` does not run it.
"""

import argparse
import json
import os
import random
import re
import sqlite3
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "crates/orbwatch-store/src/migrations.rs")


def migrations():
    """The SQL of each migration step, in the order of `MIGRATIONS`."""
    text = open(MIGRATIONS).read()
    consts = dict(re.findall(r'const (V\d+_\w+): &str = r#"(.*?)"#;', text, re.S))
    order = re.search(r"pub const MIGRATIONS: &\[&str\] = &\[(.*?)\];", text, re.S).group(1)
    return [consts[name.strip()] for name in order.split(",") if name.strip()]


OPEN = "f.triage_status NOT IN ('false-positive', 'benign')"
PAGE = ("SELECT f.row, f.hunt_id, f.id, f.suppress_key, f.triage_status, f.decision_seq, "
        "f.sev_order, f.score_order, f.seen_order FROM findings f WHERE {w} "
        "ORDER BY f.sev_order, f.score_order, f.seen_order, f.id LIMIT 101 OFFSET 0")
COUNT = "SELECT COUNT(*) FROM findings f WHERE {w}"
# The filters `Store::findings_query` builds (is_latest = 1 without a hunt).
FILTERS = {
    "none": "f.is_latest = 1",
    "kind": "f.is_latest = 1 AND f.kind = 'ioc_match'",
    "feed": "f.is_latest = 1 AND f.feed = 'rare'",
    "since": "f.is_latest = 1 AND f.last_seen >= '2021-03-20T00:00:00.000000000Z'",
    "until": "f.is_latest = 1 AND f.first_seen <= '2021-03-05T00:00:00.000000000Z'",
    "since+until": "f.is_latest = 1 AND f.last_seen >= '2021-03-10T00:00:00.000000000Z' "
                   "AND f.first_seen <= '2021-03-12T00:00:00.000000000Z'",
    "min_score": "f.is_latest = 1 AND f.score >= 99",
    "min_severity": "f.is_latest = 1 AND f.sev_order <= 1",
    "status": "f.is_latest = 1 AND f.triage_status = 'confirmed'",
    "id": "f.is_latest = 1 AND f.id = '0000000000000010'",
    "hunt": "f.hunt_id = 4",
    "hunt+feed+since": "f.hunt_id = 1 AND f.feed = 'certfr' "
                       "AND f.last_seen >= '2021-03-20T00:00:00.000000000Z'",
    "hunt+until": "f.hunt_id = 1 AND f.first_seen <= '2021-03-05T00:00:00.000000000Z'",
    "cursor": "f.is_latest = 1 AND (f.sev_order, f.score_order, f.seen_order, f.id) "
              "> (1, -40, '2021', 'a01')",
}
OTHER = {
    # `Store::finding_counts`: /metrics and the dashboard's overview.
    "finding_counts (schema 9)": "SELECT kind, severity, triage_status, "
                      "substr(COALESCE(first_seen, last_seen), 1, 10) AS day, COUNT(*) "
                      "FROM findings WHERE is_latest = 1 "
                      "GROUP BY kind, severity, triage_status, day",
    # The same counts from the list's own index: `sev_order` stands for
    # the severity (a closed set: critical 0 … info 4, none 5).
    "finding_counts (schema 10)": "SELECT kind, CASE sev_order WHEN 0 THEN 'critical' "
                      "WHEN 1 THEN 'high' WHEN 2 THEN 'medium' WHEN 3 THEN 'low' "
                      "WHEN 4 THEN 'info' END AS sev, triage_status, "
                      "substr(COALESCE(first_seen, last_seen), 1, 10) AS day, COUNT(*) "
                      "FROM findings WHERE is_latest = 1 "
                      "GROUP BY kind, sev_order, triage_status, day",
    "hunt total": "SELECT COUNT(*) FROM findings WHERE hunt_id = 2",
    "id exists": "SELECT id FROM findings WHERE id = '0000000000000010' LIMIT 1",
    "id prefix": "SELECT DISTINCT id FROM findings WHERE id >= '00000000' AND id < '00000001' "
                 "ORDER BY id LIMIT 6",
    "key of id": "SELECT suppress_key FROM findings WHERE id = '0000000000000010' "
                 "ORDER BY row DESC LIMIT 1",
    "generation": "SELECT (SELECT COALESCE(MAX(row), 0) FROM findings), "
                  "(SELECT COALESCE(MAX(seq), 0) FROM triage)",
    "json of row": "SELECT finding_json FROM findings WHERE row = 10",
    # The triggers' statements, with NEW/OLD as literals.
    "trigger: older copies": "UPDATE findings SET is_latest = 0 WHERE id = '0000000000000010' "
                             "AND is_latest = 1 AND row < 20",
    "trigger: newer copy?": "SELECT 1 FROM findings g WHERE g.id = '0000000000000010' "
                            "AND g.row > 20",
    "trigger: hand over": "UPDATE findings SET is_latest = 1 WHERE row = "
                          "(SELECT MAX(row) FROM findings WHERE id = '0000000000000010')",
    "trigger: triage by id": "UPDATE findings SET triage_status = 'benign' "
                             "WHERE id = '0000000000000010'",
    "trigger: triage by key": "UPDATE findings SET triage_status = 'benign' "
                              "WHERE suppress_key = 'ioc|x|y' AND NOT EXISTS "
                              "(SELECT 1 FROM triage t WHERE t.finding_id = findings.id)",
    "delete hunt": "DELETE FROM findings WHERE hunt_id = 3",
}

SEVS = ["info", "low", "medium", "high", "critical"]
FEEDS = ["rare"] * 1 + ["certfr"] * 500 + ["other"] * 499


def rows(n, hunt_of, rng):
    pad = "x" * 2000
    for i in range(n):
        src = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        day = 1 + i % 28
        first = f"2021-03-{day:02}T03:11:07.000000000Z"
        last = f"2021-03-{day:02}T03:40:55.000000000Z"
        sev = SEVS[i % 5]
        fid = f"{i:016x}"
        f = {"id": fid, "kind": "ioc_match", "src_ip": src, "severity": sev, "raw": pad}
        yield (hunt_of(i), fid, "ioc_match", first, last, 3, src, "10.0.0.1", src,
               FEEDS[i % 1000], 1, sev, rng.randrange(101), f"ioc|{src}|10.0.0.1", json.dumps(f))


INSERT = ("INSERT OR REPLACE INTO findings (hunt_id, id, kind, first_seen, last_seen, count, "
          "src_ip, dst_ip, indicator, feed, in_window, severity, score, suppress_key, "
          "finding_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", type=int, default=len(migrations()))
    ap.add_argument("--findings", type=int, default=100_000)
    ap.add_argument("--drop", action="append", default=[],
                    help="drop this index after the migrations (to try a schema)")
    a = ap.parse_args()
    steps = migrations()[: a.schema]
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "s.db")
        c = sqlite3.connect(db, isolation_level=None)
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = NORMAL")
        for sql in steps:
            c.executescript("BEGIN;" + sql + "COMMIT;")
        c.execute(f"PRAGMA user_version = {a.schema}")
        for i in a.drop:
            c.execute(f"DROP INDEX {i}")
        c.executemany("INSERT INTO hunts (id, args_json, coverage_json, findings) "
                      "VALUES (?, '{}', '{}', 0)", [(h,) for h in range(1, 6)])
        indexes = [r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings' "
            "ORDER BY name")]
        print(f"schema {a.schema}, sqlite {sqlite3.sqlite_version}, indexes on findings: "
              f"{', '.join(indexes)}")

        rng = random.Random(9)
        # Hunt 4 holds 1 in 500, hunt 1 a third, hunts 2 and 3 the rest.
        hunt_of = lambda i: 4 if i % 500 == 0 else (1 if i % 3 == 0 else 2 + i % 2)  # noqa: E731
        data = list(rows(a.findings, hunt_of, rng))
        c.execute("BEGIN")
        t = time.perf_counter()
        c.executemany(INSERT, data)
        c.execute("COMMIT")
        first = time.perf_counter() - t
        # The same ids again in hunt 5: each insert replaces the latest copy.
        again = [(5,) + r[1:] for r in data[: a.findings // 10]]
        c.execute("BEGIN")
        t = time.perf_counter()
        c.executemany(INSERT, again)
        c.execute("COMMIT")
        second = time.perf_counter() - t
        for i in range(0, 200, 2):
            c.execute("INSERT INTO triage (finding_id, suppress_key, status, author, at) "
                      "VALUES (?, ?, ?, 'bench', '2021-04-01T00:00:00.000000000Z')",
                      (data[i][1], data[i][13], ["confirmed", "benign"][i % 4 // 2]))
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        print(f"insert {a.findings:,} findings in one transaction: {first:.1f} s; "
              f"{len(again):,} newer copies of them: {second:.1f} s; "
              f"file {os.path.getsize(db) / 1e6:.0f} MB")

        used = {i: [] for i in indexes}
        queries = {}
        for name, w in FILTERS.items():
            queries[f"page {name}"] = PAGE.format(w=w + " AND " + OPEN)
            queries[f"count {name}"] = COUNT.format(w=w + " AND " + OPEN)
        queries.update(OTHER)
        for name, sql in queries.items():
            plan = "; ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql))
            reps = 3
            t = time.perf_counter()
            for _ in range(reps):
                if sql.startswith(("UPDATE", "DELETE")):
                    c.execute("BEGIN")
                    c.execute(sql)
                    c.execute("ROLLBACK")
                else:
                    c.execute(sql).fetchall()
            ms = (time.perf_counter() - t) / reps * 1e3
            print(f"{name:24} {ms:9.2f} ms  {plan}")
            for i in indexes:
                if re.search(rf"\b{re.escape(i)}\b", plan):
                    used[i].append(name)
        print()
        for i, names in used.items():
            print(f"{i}: {', '.join(names) if names else 'NO QUERY'}")


if __name__ == "__main__":
    main()
