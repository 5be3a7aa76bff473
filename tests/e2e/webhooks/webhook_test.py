#!/usr/bin/env python3
"""Webhooks end to end: the real admsd binary, real receivers on loopback (receiver.py, which
verifies signatures with the spec's algorithm in the standard library), the Standard Webhooks
reference implementation (npm standardwebhooks) checking every request again, and a device
speaking iclock. Usage: webhook_test.py ADMSD CASE, CASE one of: delivery, failures, down, ssrf,
latency."""
import json
import statistics
import sys
import time

from harness import (SECRET, Admsd, Receiver, node_verify, wait_for, webhook_table, workdir)

FAST = ('webhook_allow_networks = "127.0.0.0/8"\n'
        'webhook_retry_schedule = "1s"\nwebhook_reject_schedule = "1s,1s"\n')


def punches(n, day="2026-12-01", start=0):
    return [(str(100 + i), f"{day} 08:{(start + i) // 60:02}:{(start + i) % 60:02}")
            for i in range(n)]


def case_delivery(binary):
    """punch.created carries exactly a GET /punches row; signatures verify (stdlib and the
    reference library); per device in punch order; API endpoints; test event; rotation; replay."""
    work = workdir()
    receiver = Receiver(work)
    admsd = Admsd(binary, work, FAST, webhook_table("payroll", receiver.url()))
    for sn in ("DEV-A", "DEV-B"):
        admsd.handshake(sn)
    assert admsd.upload("DEV-A", punches(10)) == "OK:10"
    assert admsd.upload("DEV-B", punches(5)) == "OK:5"
    assert admsd.upload("DEV-A", punches(10)) == "OK:10"  # duplicates: no events
    got = wait_for("15 punch events", lambda: len(receiver.events("punch.created")) >= 15 and
                   receiver.events("punch.created"))
    time.sleep(0.5)
    assert len(receiver.events("punch.created")) == 15, "a duplicate punch announced"
    status, rows = admsd.api("GET", "/punches?limit=100")
    assert status == 200
    by_id = {row["id"]: row for row in rows["data"]}
    last = {}
    for record, event in got:
        assert record["verified"], record
        assert record["id"] == event["id"] and event["id"].startswith("evt_")
        assert set(event) == {"id", "type", "timestamp", "data"}
        data = event["data"]
        assert data == by_id[data["id"]], (data, by_id[data["id"]])
        assert data["id"] > last.get(data["sn"], 0), "out of order within a device"
        last[data["sn"]] = data["id"]
    assert node_verify(receiver.log, SECRET) == len(receiver.records())

    # The API: the config endpoint listed, a second one created with a generated secret.
    status, listed = admsd.api("GET", "/webhooks")
    assert status == 200 and [e["name"] for e in listed["data"]] == ["payroll"]
    assert listed["data"][0]["source"] == "config"
    assert listed["data"][0]["delivery"]["pending"] == 0
    other = Receiver(work, "other")
    status, created = admsd.api("POST", "/webhooks", {
        "name": "erp", "url": other.url(), "event_types": ["webhook.test", "punch.created"],
        "devices": ["DEV-B"], "headers": {"Authorization": "token k:s"}})
    assert status == 201, created
    secret = created["data"]["secret"]
    assert secret.startswith("whsec_") and created["data"]["headers"] == {
        "Authorization": "(set)"}
    other.secrets = [secret]
    status, body = admsd.api("POST", "/webhooks", {"name": "erp", "url": other.url()})
    assert status == 409, body
    status, test = admsd.api("POST", "/webhooks/erp/test")
    assert status == 202, test
    wait_for("the test event", lambda: other.events("webhook.test"))
    assert admsd.upload("DEV-A", punches(1, start=30)) == "OK:1"
    assert admsd.upload("DEV-B", punches(1, start=30)) == "OK:1"
    wait_for("DEV-B's punch at erp", lambda: other.events("punch.created"))
    time.sleep(0.5)
    assert [e["data"]["sn"] for _, e in other.events("punch.created")] == ["DEV-B"]
    assert node_verify(other.log, secret) == len(other.records())

    # Rotation with a grace: both secrets sign, each verifies on its own.
    status, rotated = admsd.api("POST", "/webhooks/erp/rotate-secret", {"grace": "1h"})
    assert status == 200, rotated
    new_secret = rotated["data"]["secret"]
    assert rotated["data"]["signing_secrets"] == 2
    before = len(other.records())
    admsd.api("POST", "/webhooks/erp/test")
    wait_for("a test event after the rotation", lambda: len(other.records()) > before)
    record = other.records()[-1]
    assert len(record["signature"].split(" ")) == 2, record["signature"]
    only_new = Receiver(work, "tmp")  # just for its log path
    only_new.stop()
    with open(only_new.log, "w", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    assert node_verify(only_new.log, new_secret) == 1
    assert node_verify(only_new.log, secret) == 1

    # Replay: the same ids and bytes again, in order per device.
    def per_device(pairs):
        out = {}
        for r, e in pairs:
            out.setdefault(e["data"]["sn"], []).append((r["id"], r["body"]))
        return out

    first = receiver.events("punch.created")
    status, replayed = admsd.api("POST", "/webhooks/payroll/replay", {"after_sequence": 0})
    assert status == 202 and replayed["requeued"] >= 15, replayed
    wait_for("the replay", lambda: len(receiver.events("punch.created")) >= 2 * len(first))
    again = receiver.events("punch.created")[len(first):]
    assert per_device(again) == per_device(first), "a replay changed ids, bytes or order"
    admsd.stop()


def case_failures(binary):
    """500 retried with the same id and a new timestamp; 429 honours Retry-After; a timeout is a
    failure then a success; a 302 is never followed; a 422 parks one event while the device's
    later events go on; a 410 disables the endpoint until enable."""
    work = workdir()
    receiver = Receiver(work)
    elsewhere = Receiver(work, "elsewhere")
    admsd = Admsd(binary, work, FAST,
                  webhook_table("hr", receiver.url(), 'timeout = "1s"\nevent_types = ['
                                '"punch.created"]'))
    admsd.handshake("DEV-A")

    receiver.mode(status=500)
    admsd.upload("DEV-A", punches(1))
    wait_for("three attempts", lambda: len(receiver.records()) >= 3)
    attempts = receiver.records()[:3]
    assert len({r["id"] for r in attempts}) == 1
    assert len({r["body"] for r in attempts}) == 1
    assert all(r["verified"] for r in attempts)
    receiver.mode(status=200)
    wait_for("the 500'd event delivered", lambda: admsd.deliveries("hr", "delivered"))
    event_id = attempts[0]["id"]
    status, detail = admsd.api("GET", f"/webhooks/hr/deliveries/{event_id}")
    assert status == 200 and detail["data"]["attempt_log"][0]["status"] == 500, detail
    assert detail["data"]["attempt_log"][-1]["status"] == 200
    assert detail["data"]["body"] == attempts[0]["body"]

    receiver.mode(status=429, retry_after="3")
    count = len(receiver.records())
    admsd.upload("DEV-A", punches(1, start=10))
    wait_for("a 429", lambda: len(receiver.records()) > count)
    t429 = receiver.records()[-1]["at"]
    receiver.mode(status=200)
    wait_for("the 429'd event delivered", lambda: len(admsd.deliveries("hr", "delivered")) == 2)
    gap = receiver.records()[-1]["at"] - t429
    assert gap >= 2.5, f"Retry-After: 3 not honoured ({gap:.2f} s)"

    receiver.mode(status=200, delay=2.5)  # the endpoint's timeout is 1 s
    admsd.upload("DEV-A", punches(1, start=20))
    wait_for("a timeout recorded", lambda: any(
        d["last_error"] and "tim" in d["last_error"] for d in admsd.deliveries("hr", "pending")))
    receiver.mode(status=200)
    wait_for("the timed-out event delivered",
             lambda: len(admsd.deliveries("hr", "delivered")) == 3, timeout=30)

    receiver.mode(status=302, location=elsewhere.url())
    admsd.upload("DEV-A", punches(1, start=30))
    wait_for("two 302s", lambda: sum(r["status"] == 302 for r in receiver.records()) >= 2)
    assert elsewhere.records() == [], "a redirect was followed"
    receiver.mode(status=200)
    wait_for("the 302'd event delivered", lambda: len(admsd.deliveries("hr", "delivered")) == 4,
             timeout=30)

    # A 422 for PIN 107: parked after the reject schedule; 106 before and 108 after it flow.
    receiver.mode(status=200, reject_pin="107", reject_status=422)
    admsd.upload("DEV-A", punches(3, start=40)[:0] + [("106", "2026-12-01 09:00:00"),
                                                      ("107", "2026-12-01 09:01:00"),
                                                      ("108", "2026-12-01 09:02:00")])
    failed = wait_for("107 parked", lambda: admsd.deliveries("hr", "failed"), timeout=30)
    assert len(failed) == 1 and failed[0]["attempts"] == 3 and failed[0]["last_status"] == 422
    wait_for("108 delivered", lambda: any(
        e["data"]["pin"] == "108" and r["status"] == 200
        for r, e in receiver.events("punch.created")))
    receiver.mode(status=200)
    status, _ = admsd.api("POST", f"/webhooks/hr/deliveries/{failed[0]['event_id']}/retry")
    assert status == 202
    wait_for("the parked event retried and delivered",
             lambda: not admsd.deliveries("hr", "failed") and
             not admsd.deliveries("hr", "pending"))

    receiver.mode(status=410)
    admsd.upload("DEV-A", punches(1, start=50))
    wait_for("the endpoint disabled", lambda: not admsd.endpoint("hr")["enabled"])
    assert "410" in admsd.endpoint("hr")["disabled_reason"]
    receiver.mode(status=200)
    admsd.upload("DEV-A", punches(1, start=51))
    time.sleep(1.5)
    assert admsd.endpoint("hr")["delivery"]["pending"] == 2, admsd.deliveries("hr", "pending")
    status, _ = admsd.api("POST", "/webhooks/hr/enable")
    assert status == 200
    wait_for("the backlog after enable", lambda: admsd.endpoint("hr")["delivery"]["pending"] == 0)
    assert node_verify(receiver.log, SECRET) == len(receiver.records())
    admsd.stop()


def case_down(binary):
    """A receiver down for a while: one probe at a time, nothing parked, and the backlog
    delivered in order when it is back (schedule scaled: probes every 1-2 s)."""
    work = workdir()
    receiver = Receiver(work)
    admsd = Admsd(binary, work,
                  'webhook_allow_networks = "127.0.0.0/8"\nwebhook_retry_schedule = "1s,2s"\n',
                  webhook_table("hr", receiver.url()))
    admsd.handshake("DEV-A")
    admsd.handshake("DEV-B")
    wait_for("device.online events", lambda: len(receiver.events("device.online")) == 2)
    receiver.stop()
    for i in range(5):
        admsd.upload("DEV-A", punches(4, start=4 * i))
        admsd.upload("DEV-B", punches(2, start=2 * i))
    time.sleep(6)
    pending = admsd.deliveries("hr", "pending")
    assert len(pending) == 30, len(pending)
    # Requests already in flight when the first failure came back (at most max_in_flight, one
    # per lane) were tried once; after that only the probe, the oldest event, is tried again.
    oldest = min(pending, key=lambda d: d["sequence"])
    others = [d for d in pending if d["attempts"] > 0 and d is not oldest]
    assert len(others) <= 3 and all(d["attempts"] == 1 for d in others), others
    assert 2 <= oldest["attempts"] <= 6, oldest  # one probe at a time, on the schedule
    assert not admsd.deliveries("hr", "failed")
    assert admsd.endpoint("hr")["delivery"]["up"] is False
    receiver.start()  # the same port
    wait_for("the backlog", lambda: len(receiver.events("punch.created")) == 30, timeout=30)
    last = {}
    for record, event in receiver.events("punch.created"):
        data = event["data"]
        assert data["id"] > last.get(data["sn"], 0), "backlog out of order"
        last[data["sn"]] = data["id"]
    assert admsd.endpoint("hr")["delivery"]["up"] is True
    text = admsd.log_text()
    assert text.count("Webhook endpoint hr is unavailable") == 1, "one line when it goes down"
    assert text.count("Webhook endpoint hr is back") == 1, "one line when it recovers"
    admsd.stop()


def case_ssrf(binary):
    """Loopback, mapped, link-local, unspecified and names that resolve to loopback are refused
    without webhook_allow_networks, naming it; accepted with it; checked again at connection."""
    work = workdir()
    receiver = Receiver(work)
    port = receiver.port
    # A config endpoint by name is not resolved at start: the connection refuses it.
    admsd = Admsd(binary, work, 'webhook_retry_schedule = "1s"\n',
                  webhook_table("byname", f"http://localhost:{port}/hook"))
    for url in (f"http://127.0.0.1:{port}/", f"http://[::1]:{port}/",
                f"http://[::ffff:127.0.0.1]:{port}/", "http://169.254.169.254/latest/meta-data",
                "http://0.0.0.0/", f"http://localhost:{port}/", "http://10.1.2.3/",
                "http://2130706433/", "ftp://example.com/", "http://user:pw@example.com/"):
        status, body = admsd.api("POST", "/webhooks", {"name": "x", "url": url})
        assert status == 400, (url, status, body)
        if "example.com" not in url and "2130706433" not in url:
            assert "webhook_allow_networks" in body["error"], (url, body)
    admsd.handshake("DEV-A")
    admsd.upload("DEV-A", punches(1))
    wait_for("a blocked attempt", lambda: any(
        d["attempts"] > 0 and "webhook_allow_networks" in (d["last_error"] or "")
        for d in admsd.deliveries("byname")))
    assert receiver.records() == [], "a refused address was dialled"
    admsd.stop()

    allowed = Admsd(binary, work, 'webhook_allow_networks = "127.0.0.0/8,::1/128"\n', "",
                    name="allowed")
    for name, url in (("a", f"http://127.0.0.1:{port}/"), ("b", f"http://localhost:{port}/")):
        status, body = allowed.api("POST", "/webhooks", {"name": name, "url": url})
        assert status == 201, (url, body)
    status, body = allowed.api("POST", "/webhooks", {"name": "c", "url": "http://169.254.169.254/"})
    assert status == 400, body
    allowed.stop()


def case_latency(binary):
    """Device ingest is not slowed while the receiver hangs: upload round trips with a hanging
    receiver beside those with none configured."""
    work = workdir()
    receiver = Receiver(work)
    receiver.mode(status=200, delay=30)
    hung = Admsd(binary, work, 'webhook_allow_networks = "127.0.0.0/8"\n',
                 webhook_table("slow", receiver.url(), 'timeout = "30s"'), name="hung")
    plain = Admsd(binary, work, "", "", name="plain")

    def timings(admsd):
        admsd.handshake("DEV-A")
        out = []
        for i in range(40):
            t = time.monotonic()
            admsd.upload("DEV-A", punches(5, start=5 * i))
            out.append(time.monotonic() - t)
        return out

    with_hang = timings(hung)
    without = timings(plain)
    print(f"upload round trip, median: {statistics.median(with_hang) * 1000:.1f} ms with a "
          f"hanging receiver, {statistics.median(without) * 1000:.1f} ms with no endpoint; "
          f"max {max(with_hang) * 1000:.1f} ms / {max(without) * 1000:.1f} ms")
    assert max(with_hang) < 1.0, "an upload waited for the receiver"
    assert hung.endpoint("slow")["delivery"]["pending"] >= 190
    hung.kill()
    plain.stop()


if __name__ == "__main__":
    binary, case = sys.argv[1], sys.argv[2]
    globals()[f"case_{case}"](binary)
    print(f"webhook_test {case}: passed")
