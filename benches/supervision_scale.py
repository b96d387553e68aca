#!/usr/bin/env python3
# Supervision check cost with 1,000,000 sites: the due-site claim of src/store/queue.rs on the
# schema of migrations/sqlite/0004, with 100 sites due.
# Run: python3 benches/supervision_scale.py (uses the Python sqlite3 module's SQLite, not the
# one bundled in vakt; the point is the query plan: the deadline index, not a scan).
import sqlite3, time, random, os
p = "/tmp/sup_scale.db"
if os.path.exists(p): os.remove(p)
db = sqlite3.connect(p, isolation_level=None)
db.executescript(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "migrations", "sqlite", "0004_alarms_supervision.sql")).read().split("INSERT INTO supervision")[0])
now = 1_800_000_000_000_000
db.execute("BEGIN")
rows = []
for i in range(1_000_000):
    due = i < 100
    last = now - (3_600_000_000 if due else random.randint(0, 60_000_000))
    rows.append((f"{i:08X}", 60 if due else 3600, last, last + (60 if due else 3600) * 1_000_000))
db.executemany("INSERT INTO supervision (account, interval_secs, last_seen, deadline) VALUES (?,?,?,?)", rows)
db.execute("COMMIT")
q = ("UPDATE supervision SET failed_at = ? WHERE account IN (SELECT account FROM supervision "
     "WHERE failed_at IS NULL AND deadline IS NOT NULL AND deadline < ? ORDER BY deadline LIMIT ?) "
     "AND failed_at IS NULL RETURNING account")
print("plan:", [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + q, (now, now, 1000))])
print("sqlite", sqlite3.sqlite_version)
db.execute("BEGIN"); t = time.perf_counter(); n = len(db.execute(q, (now, now, 1000)).fetchall()); dt = time.perf_counter() - t; db.execute("ROLLBACK")
print(f"1,000,000 sites, {n} due: claim took {dt*1000:.2f} ms")
ts = []
for _ in range(20):
    t = time.perf_counter(); db.execute(q.replace("UPDATE supervision SET failed_at = ? WHERE", "SELECT account FROM supervision WHERE ? IS NOT NULL AND").replace(" RETURNING account", ""), (now, now, 1000)).fetchall(); ts.append(time.perf_counter() - t)
ts.sort(); print(f"nothing changed, check repeated: median {ts[10]*1000:.3f} ms")
db.execute("UPDATE supervision SET failed_at = 1 WHERE rowid <= 100")
ts = []
for _ in range(20):
    t = time.perf_counter(); db.execute("BEGIN"); n = len(db.execute(q, (now, now, 1000)).fetchall()); db.execute("ROLLBACK"); ts.append(time.perf_counter() - t)
ts.sort(); print(f"1,000,000 sites, none due ({n}): median {ts[10]*1000:.3f} ms")
