#!/usr/bin/env python3
"""The webhook crash test: simulated terminals upload punches while admsd, with one webhook
endpoint pointing at a slow receiver on loopback (tests/e2e/webhooks/receiver.py), is killed with
SIGKILL at random moments and restarted on the same data directory. At the end the receiver is
made fast and the outbox drained; then, from the receiver's log (every request, fsynced before it
answers) and the admin API:

  - every punch a terminal got OK:<n> for was delivered at least once, as a verified
    punch.created event whose data is that punch's GET /punches row;
  - every stored punch has exactly one event id (none for a duplicate upload), and no event
    announces a punch that is not stored;
  - every delivery of one webhook-id carries byte-identical bodies;
  - per terminal, the first deliveries come in ascending punch id order;
  - every request's Standard Webhooks signature verifies;
  - re-deliveries happen only across a kill (the previous delivery of the id before it, the
    next one after it).

It prints the duplicate deliveries per SIGKILL and the totals.

Usage: webhook_crash_test.py ADMSD RECEIVER_PY
Environment: ADMS_WEBHOOK_CRASH_KILLS (default 6), ADMS_WEBHOOK_CRASH_DEVICES (default 6),
ADMS_CRASH_KEEP=1 keeps the data directory and logs (always kept on failure).
Exit status: 0 when every check holds, 1 when one fails, 2 on a usage error.
"""
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENDPOINT = "crash"
FIRST_PUNCH = datetime(2024, 1, 1, 8, 0, 0)
PUNCH_SPACING = timedelta(seconds=61)
DRAIN_SECONDS = 90  # the outbox, with a fast receiver
DEVICE_DRAIN_SECONDS = 20  # the terminals' unacknowledged batches, after the last restart
REQUEST_TIMEOUT = 5


class Failed(Exception):
    pass


def now():
    return time.time()


def punch_line(k):
    """Punch k of a terminal: its own minute, so (SN, local time) names one punch."""
    local = (FIRST_PUNCH + PUNCH_SPACING * k).strftime("%Y-%m-%d %H:%M:%S")
    pin = str(1 + k % 97)
    return pin, local, f"{pin}\t{local}\t{k % 6}\t{15 if k % 3 == 0 else 1}\t0\t0\t0"


def request(port, method, target, body=None, headers=None, timeout=REQUEST_TIMEOUT):
    """One request on a new connection: (status, body bytes); raises OSError and the like."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Connection": "close", "User-Agent": "iClock Proxy/1.09"}
        hdrs.update(headers or {})
        conn.request(method, target, body=body, headers=hdrs)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


class Terminal(threading.Thread):
    """A simulated terminal: handshakes, then uploads batches of 1-6 new punches with a pause
    of 10-60 ms, re-sending a batch until it gets HTTP 200 `OK:<lines>`, as devices do."""

    def __init__(self, test, sn, seed):
        super().__init__(daemon=True, name=sn)
        self.test = test
        self.sn = sn
        self.random = random.Random(seed)
        self.generated = 0
        self.acknowledged = {}  # (pin, local_time) -> k
        self.requests = 0
        self.failed_requests = 0
        self.pending = []  # the batch not acknowledged yet
        self.error = None

    def pause(self, low=0.01, high=0.06):
        time.sleep(self.random.uniform(low, high))

    def send(self, method, target, body=None):
        self.requests += 1
        try:
            return request(self.test.port, method, target, body)
        except (OSError, http.client.HTTPException):
            self.failed_requests += 1
            return None, b""

    def run(self):
        try:
            self.loop()
        except Exception as e:  # reported by the test as a failure, with the terminal's name
            self.error = f"{type(e).__name__}: {e}"

    def loop(self):
        test = self.test
        while not test.stopping.is_set():
            status, body = self.send(
                "GET", f"/iclock/cdata?SN={self.sn}&options=all&pushver=2.4.1")
            if status == 200 and body.startswith(f"GET OPTION FROM: {self.sn}".encode()):
                break
            self.pause()
        while True:
            if test.stopping.is_set():
                if not self.pending or now() > test.device_deadline:
                    return
            elif not self.pending:
                count = self.random.randint(1, 6)
                self.pending = list(range(self.generated, self.generated + count))
                self.generated += count
            lines = [punch_line(k) for k in self.pending]
            body = "".join(line + "\n" for _, _, line in lines).encode()
            status, reply = self.send(
                "POST", f"/iclock/cdata?SN={self.sn}&table=ATTLOG&Stamp={1000000 + self.pending[-1]}",
                body)
            if status == 200 and reply == f"OK:{len(lines)}".encode():
                with test.lock:
                    for k, (pin, local, _) in zip(self.pending, lines):
                        self.acknowledged[(pin, local)] = k
                self.pending = []
            elif status not in (None, 503):
                test.unexpected.append(f"{self.sn}: HTTP {status} {reply[:80]!r}")
            self.pause()


class Test:
    def __init__(self, admsd, receiver_py, kills, devices):
        self.admsd = admsd
        self.receiver_py = receiver_py
        self.kills = kills
        self.devices = devices
        self.dir = tempfile.mkdtemp(prefix="admsd-webhook-crash.")
        self.data = os.path.join(self.dir, "data")
        self.port = 0
        self.server = None
        self.receiver = None
        self.receiver_port = None
        self.starts = 0
        self.kill_times = []  # each SIGKILL, once the process is reaped
        self.spawn_times = []  # each start, just before the process is made
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.device_deadline = 0.0
        self.unexpected = []
        self.terminals = []
        self.started = now()

    # --- processes -----------------------------------------------------------------------
    def start_receiver(self):
        port_file = os.path.join(self.dir, "receiver.port")
        self.receiver = subprocess.Popen(
            [sys.executable, self.receiver_py, "--secret", SECRET, "--log",
             os.path.join(self.dir, "receiver.jsonl"), "--port-file", port_file],
            stdout=open(os.path.join(self.dir, "receiver.out"), "w"), stderr=subprocess.STDOUT)
        deadline = now() + 10
        while now() < deadline:
            if os.path.exists(port_file):
                self.receiver_port = int(open(port_file).read())
                return
            if self.receiver.poll() is not None:
                break
            time.sleep(0.02)
        raise Failed("the receiver did not start: " + self.tail("receiver.out"))

    def receiver_mode(self, mode):
        status, _ = request(self.receiver_port, "POST", "/__mode", json.dumps(mode).encode(),
                            {"Content-Type": "application/json"})
        if status != 200:
            raise Failed(f"the receiver refused mode {mode}: HTTP {status}")

    def write_config(self):
        path = os.path.join(self.dir, "admsd.toml")
        with open(path, "w") as f:
            f.write(f'webhook_allow_networks = "127.0.0.0/8"\n'
                    f'[webhooks.{ENDPOINT}]\n'
                    f'url = "http://127.0.0.1:{self.receiver_port}/hook"\n'
                    f'secret = "{SECRET}"\n'
                    f'event_types = ["punch.created"]\n')
        return path

    def start_server(self, config):
        """Starts admsd (port 0 the first time, the same port after: the terminals keep
        talking to it) and waits for its start line, logged once it listens."""
        for _ in range(5):
            self.starts += 1
            log = os.path.join(self.dir, f"server.{self.starts}.log")
            self.spawn_times.append(now())
            self.server = subprocess.Popen(
                [self.admsd, "--config", config, "--listen", f"127.0.0.1:{self.port}",
                 "--data-dir", self.data, "--time-zone", "Europe/Berlin", "--admission", "open",
                 "--device-rate-limit", "0"],
                stdout=open(log, "w"), stderr=subprocess.STDOUT)
            deadline = now() + 10
            while now() < deadline:
                m = re.search(r" listening on 127\.0\.0\.1:(\d+),", open(log).read())
                if m:
                    self.port = int(m.group(1))
                    with open(os.path.join(self.dir, "kills.log"), "a") as f:
                        f.write(f"start {self.starts} listening at {now():.6f}\n")
                    return
                if self.server.poll() is not None:
                    break
                time.sleep(0.01)
            self.server.kill()
            self.server.wait()
            if "cannot listen" not in open(log).read():
                raise Failed(f"admsd did not start (start {self.starts}): "
                             + self.tail(f"server.{self.starts}.log"))
            time.sleep(0.2)
        raise Failed(f"admsd could not listen on port {self.port}")

    def kill_server(self):
        if self.server.poll() is not None:
            raise Failed(f"admsd exited on its own (start {self.starts}): "
                         + self.tail(f"server.{self.starts}.log"))
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()
        # Taken once it is reaped: every request the receiver got from it arrived before this.
        self.kill_times.append(now())
        with open(os.path.join(self.dir, "kills.log"), "a") as f:
            f.write(f"kill {len(self.kill_times)} at {self.kill_times[-1]:.6f} "
                    f"(admsd start {self.starts})\n")

    def cleanup(self, failed):
        self.stopping.set()
        for p in (self.server, self.receiver):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if failed or os.environ.get("ADMS_CRASH_KEEP") == "1":
            print(f"webhook crash test: data and logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, name, lines=5):
        try:
            return " | ".join(open(os.path.join(self.dir, name)).read().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- the admin API ---------------------------------------------------------------------
    def api(self, target):
        token = open(os.path.join(self.data, "admin_token")).read().strip()
        status, body = request(self.port, "GET", target,
                               headers={"Authorization": f"Bearer {token}"})
        if status != 200:
            raise Failed(f"GET {target}: HTTP {status} {body[:200]!r}")
        return json.loads(body)["data"]

    def wait_drained(self):
        deadline = now() + DRAIN_SECONDS
        while True:
            delivery = self.api(f"/webhooks/{ENDPOINT}")["delivery"]
            if delivery.get("pending") == 0:
                return delivery
            if now() > deadline:
                raise Failed(f"the outbox did not drain in {DRAIN_SECONDS} s: {delivery}")
            time.sleep(0.2)

    def stored_punches(self):
        """Every GET /punches row of the terminals, by (sn, local_time)."""
        rows = {}
        after = 0
        while True:
            page = self.api(f"/punches?limit=10000&after={after}&device="
                            + ",".join(t.sn for t in self.terminals))
            for row in page:
                key = (row["sn"], row["local_time"])
                if key in rows:
                    raise Failed(f"punch stored twice: {key}")
                rows[key] = row
            if not page:
                return rows
            after = page[-1]["id"]

    # --- the run ---------------------------------------------------------------------------
    def run(self):
        self.start_receiver()
        config = self.write_config()
        self.receiver_mode({"delay": 0.03})
        self.start_server(config)
        print(f"webhook crash test: admsd on 127.0.0.1:{self.port}, receiver on "
              f"127.0.0.1:{self.receiver_port}, {self.devices} terminals, {self.kills} kills, "
              f"in {self.dir}", flush=True)
        seeds = random.Random()
        self.terminals = [Terminal(self, f"WHCRASH{i + 1:02}", seeds.getrandbits(32))
                          for i in range(self.devices)]
        for t in self.terminals:
            t.start()
        for i in range(self.kills):
            time.sleep(random.uniform(0.8, 2.5))
            self.kill_server()
            # A slow receiver, 20-50 ms a request, different in each round.
            self.receiver_mode({"delay": round(random.uniform(0.02, 0.05), 3)})
            # As a service manager waits before a restart. It also lets the receiver log what
            # the dead process sent before the next one can send anything, so that each
            # re-delivery can be told to be across a kill or not.
            time.sleep(0.3)
            self.start_server(config)
        time.sleep(1)
        # The terminals stop making punches and get their last batches acknowledged.
        self.device_deadline = now() + DEVICE_DRAIN_SECONDS
        self.stopping.set()
        for t in self.terminals:
            t.join(DEVICE_DRAIN_SECONDS + REQUEST_TIMEOUT + 5)
        self.receiver_mode({"delay": 0})
        drained_at = now()
        delivery = self.wait_drained()
        drain_seconds = now() - drained_at
        stored = self.stored_punches()
        self.server.send_signal(signal.SIGTERM)
        try:
            status = self.server.wait(20)
        except subprocess.TimeoutExpired:
            raise Failed("admsd did not stop within 20 s of SIGTERM")
        if status != 0:
            print(f"webhook crash test: note: admsd exited with {status} on SIGTERM")
        return self.check(stored, delivery, drain_seconds)

    def check(self, stored, delivery, drain_seconds):
        problems = []

        def problem(text):
            if len(problems) < 20:
                problems.append(text)
            else:
                problems.append("…")

        for t in self.terminals:
            if t.error:
                problem(f"terminal {t.sn} stopped: {t.error}")
            if t.pending:
                problem(f"terminal {t.sn} still has {len(t.pending)} punches unacknowledged")
        for text in self.unexpected[:5]:
            problem(f"unexpected reply: {text}")
        if delivery.get("failed"):
            problem(f"{delivery['failed']} deliveries parked as failed")

        records = []
        with open(os.path.join(self.dir, "receiver.jsonl")) as f:
            for n, line in enumerate(f, 1):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    problem(f"receiver log line {n} is not JSON: {line[:80]!r}")
        bodies = {}  # webhook-id -> body
        arrivals = {}  # webhook-id -> [at, …]
        first = []  # (record) of each id's first delivery, in the receiver's order
        ids_of_punch = {}  # (sn, local_time) -> {webhook-id}
        unverified = 0
        for r in records:
            if not r.get("verified"):
                unverified += 1
                continue
            wid = r.get("id")
            try:
                event = json.loads(r["body"])
            except ValueError:
                problem(f"delivery {wid}: body is not JSON")
                continue
            if event.get("id") != wid or event.get("type") != "punch.created" or \
                    r.get("path") != "/hook":
                problem(f"delivery {wid}: unexpected event {r['body'][:120]}")
                continue
            if wid in bodies:
                if bodies[wid] != r["body"]:
                    at = next((i for i, (a, b) in enumerate(zip(bodies[wid], r["body"]))
                               if a != b), min(len(bodies[wid]), len(r["body"])))
                    problem(f"re-delivery of {wid} with other bytes, from byte {at}: "
                            f"{bodies[wid][at:at + 40]!r} then {r['body'][at:at + 40]!r}")
                arrivals[wid].append(r["at"])
                continue
            bodies[wid] = r["body"]
            arrivals[wid] = [r["at"]]
            data = event["data"]
            first.append(data)
            ids_of_punch.setdefault((data["sn"], data["local_time"]), set()).add(wid)
        if unverified:
            problem(f"{unverified} requests whose signature does not verify")

        # Each terminal's first deliveries, in the order the receiver took them.
        last_id = {}
        for data in first:
            sn = data["sn"]
            if sn in last_id and data["id"] <= last_id[sn]:
                problem(f"{sn}: punch {data['id']} delivered first after punch {last_id[sn]}")
            last_id[sn] = data["id"]

        acknowledged = 0
        lost = 0
        for t in self.terminals:
            for (pin, local), k in t.acknowledged.items():
                acknowledged += 1
                key = (t.sn, local)
                if key not in stored:
                    lost += 1
                    problem(f"acknowledged punch not stored: {t.sn} {pin} {local}")
                elif key not in ids_of_punch:
                    lost += 1
                    problem(f"acknowledged punch never delivered: {t.sn} {pin} {local} "
                            f"(punch id {stored[key]['id']})")
        acknowledged_keys = {(t.sn, local) for t in self.terminals for (_, local) in t.acknowledged}
        for key, row in stored.items():
            ids = ids_of_punch.get(key, set())
            if len(ids) > 1:
                problem(f"punch {key} announced by {len(ids)} events: {sorted(ids)}")
            if not ids and key not in acknowledged_keys:
                # Stored from a batch whose OK never arrived: it is announced all the same.
                problem(f"stored punch never delivered: {key} (punch id {row['id']})")
        for data in first:
            row = stored.get((data["sn"], data["local_time"]))
            if row is None:
                problem(f"event for a punch that is not stored: {data}")
            elif row != data:
                problem(f"event data differs from the GET /punches row: {data} vs {row}")

        # Duplicates: a re-delivery goes to kill k when the delivery before it reached the
        # receiver before the process after kill k was started, and it after; one with no
        # restart in between is a relay that sent an event twice in one life.
        per_kill = [0] * len(self.kill_times)
        within = 0
        # The first start after each kill (a start that found the port still taken is retried).
        restarts = [min(s for s in self.spawn_times if s > k) for k in self.kill_times]
        for wid, times in arrivals.items():
            for before, after in zip(times, times[1:]):
                crossed = [i for i, s in enumerate(restarts) if before < s < after]
                if crossed:
                    per_kill[crossed[-1]] += 1
                else:
                    within += 1
        if within:
            problem(f"{within} re-deliveries with no kill between them and the one before")
        duplicates = sum(per_kill) + within
        deliveries = sum(len(t) for t in arrivals.values())
        requests = sum(t.requests for t in self.terminals)
        failed_requests = sum(t.failed_requests for t in self.terminals)
        wall = now() - self.started
        print(f"webhook crash test: duplicates per kill: {' '.join(map(str, per_kill))}")
        print(f"webhook crash test: kills={len(self.kill_times)} starts={self.starts} "
              f"acknowledged={acknowledged} stored={len(stored)} events={len(bodies)} "
              f"deliveries={deliveries} duplicates={duplicates} "
              f"duplicates_per_kill={duplicates / max(1, len(self.kill_times)):.1f} "
              f"duplicates_without_kill={within} lost={lost} unverified={unverified} "
              f"upload_requests={requests} failed_uploads={failed_requests} "
              f"final_drain={drain_seconds:.1f}s wall={wall:.1f}s")
        if acknowledged == 0:
            problem("no punch was acknowledged")
        if len(self.kill_times) < self.kills:
            problem(f"only {len(self.kill_times)} of {self.kills} kills")
        for text in problems:
            print(f"webhook crash test: FAILED: {text}")
        return not problems


def main():
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} ADMSD RECEIVER_PY", file=sys.stderr)
        return 2
    try:
        kills = int(os.environ.get("ADMS_WEBHOOK_CRASH_KILLS", "6"))
        devices = int(os.environ.get("ADMS_WEBHOOK_CRASH_DEVICES", "6"))
        if kills < 1 or not 1 <= devices <= 99:
            raise ValueError
    except ValueError:
        print("ADMS_WEBHOOK_CRASH_KILLS must be ≥ 1 and ADMS_WEBHOOK_CRASH_DEVICES 1-99",
              file=sys.stderr)
        return 2
    test = Test(sys.argv[1], sys.argv[2], kills, devices)

    # A signal to the test still stops admsd and the receiver (the finally below).
    def interrupted(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)
    failed = True
    try:
        failed = not test.run()
    except Failed as e:
        print(f"webhook crash test: FAILED: {e}")
        print(f"--- tail of server.{test.starts}.log: {test.tail(f'server.{test.starts}.log')}")
    finally:
        test.cleanup(failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
