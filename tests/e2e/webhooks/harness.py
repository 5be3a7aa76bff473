"""What the webhook tests share: the real admsd binary and receiver.py as processes on loopback,
a device speaking iclock, and the admin API. Every wait is bounded; every process is stopped at
exit."""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
_processes = []


def _stop_all():
    for p in _processes:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_stop_all)


def wait_for(what, check, timeout=20.0, interval=0.05):
    """Polls check() until it returns a true value, which it returns; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Receiver:
    """receiver.py on 127.0.0.1 (a port of its own, or `port` to come back on the same one)."""

    def __init__(self, workdir, name="receiver", secrets=(SECRET,), port=None):
        self.log = os.path.join(workdir, f"{name}.log")
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.secrets = list(secrets)
        self.name = name
        self.process = None
        self.port = port
        self.start()

    def start(self):
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        args = [sys.executable, os.path.join(HERE, "receiver.py"), "--log", self.log,
                "--port-file", self.port_file]
        for s in self.secrets:
            args += ["--secret", s]
        if self.port:
            args += ["--port", str(self.port)]
        self.process = subprocess.Popen(args)
        _processes.append(self.process)
        self.port = int(wait_for("the receiver's port", lambda: os.path.exists(self.port_file)
                                 and open(self.port_file).read().strip()))

    def stop(self):
        self.process.kill()
        self.process.wait()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def mode(self, **mode):
        body = json.dumps(mode).encode()
        urllib.request.urlopen(urllib.request.Request(self.url("/__mode"), body), timeout=5).read()

    def records(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def events(self, type_=None):
        out = []
        for r in self.records():
            event = json.loads(r["body"])
            if type_ is None or event["type"] == type_:
                out.append((r, event))
        return out


class Admsd:
    """The real admsd binary with a config file of its own, listening on a free loopback port."""

    def __init__(self, binary, workdir, settings="", tables="", name="admsd"):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, f"{name}-data")
        self.config = os.path.join(workdir, f"{name}.toml")
        self.output = os.path.join(workdir, f"{name}.out")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write('listen = "127.0.0.1:0"\n')
            f.write(f'data_dir = "{self.data_dir}"\n')
            f.write('time_zone = "Asia/Riyadh"\n')
            f.write(settings)
            f.write("\n")
            f.write(tables)
        self.process = None
        self.start()

    def start(self):
        self.out = open(self.output, "a", encoding="utf-8")
        self.out.write("---- start\n")
        self.out.flush()
        self.process = subprocess.Popen([self.binary, "--config", self.config], stdout=self.out,
                                        stderr=subprocess.STDOUT)
        _processes.append(self.process)

        def port():
            if self.process.poll() is not None:
                raise AssertionError(f"admsd exited: {self.log_text()[-2000:]}")
            found = re.findall(r"listening on 127\.0\.0\.1:(\d+)", self.log_text().split(
                "---- start\n")[-1])
            return found and int(found[0])

        self.port = wait_for("admsd to listen", port)
        with open(os.path.join(self.data_dir, "admin_token"), encoding="utf-8") as f:
            self.token = f.read().strip()

    def log_text(self):
        with open(self.output, encoding="utf-8") as f:
            return f.read()

    def kill(self, sig=signal.SIGKILL):
        self.process.send_signal(sig)
        self.process.wait()

    def stop(self):
        self.kill(signal.SIGTERM)

    def request(self, method, path, body=None, token=True):
        data = None if body is None else (body if isinstance(body, bytes) else body.encode())
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method)
        if token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None and not isinstance(body, bytes):
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def api(self, method, path, payload=None):
        status, text = self.request(method, path,
                                    None if payload is None else json.dumps(payload))
        return status, json.loads(text) if text else None

    def upload(self, sn, lines, stamp=1):
        """ATTLOG lines (pin, local time) as a device sends them; the reply body."""
        body = "".join(f"{pin}\t{when}\t0\t1\t0\t0\n" for pin, when in lines)
        status, text = self.request("POST", f"/iclock/cdata?SN={sn}&table=ATTLOG&Stamp={stamp}",
                                    body.encode(), token=False)
        assert status == 200, (status, text)
        return text

    def handshake(self, sn):
        status, _ = self.request("GET", f"/iclock/cdata?SN={sn}&options=all", token=False)
        assert status == 200

    def endpoint(self, name):
        status, body = self.api("GET", f"/webhooks/{name}")
        assert status == 200, (status, body)
        return body["data"]

    def deliveries(self, name, state=None):
        query = f"?state={state}&limit=1000" if state else "?limit=1000"
        status, body = self.api("GET", f"/webhooks/{name}/deliveries{query}")
        assert status == 200, (status, body)
        return body["data"]


def node_verify(log, *secrets):
    """The Standard Webhooks reference implementation (npm standardwebhooks) checks every
    request of `log`; returns how many it verified."""
    node = shutil.which("node")
    assert node, "node is not installed (tests/e2e/webhooks/setup.sh installs it)"
    assert os.path.isdir(os.path.join(HERE, "node_modules", "standardwebhooks")), \
        "npm ci has not run in tests/e2e/webhooks (tests/e2e/webhooks/setup.sh)"
    out = subprocess.run([node, os.path.join(HERE, "verify.js"), log, *secrets],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return int(out.stdout.split()[-1])


def workdir():
    path = tempfile.mkdtemp(prefix="admsd-webhooks-")
    atexit.register(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def webhook_table(name, url, extra=""):
    return f'[webhooks.{name}]\nurl = "{url}"\nsecret = "{SECRET}"\n{extra}\n'
