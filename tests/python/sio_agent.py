"""Socket.IO test agent (python-socketio). Same line protocol as tests/node/agent.mjs:
JSON commands on stdin, one JSON object per line on stdout for everything that happens."""
import json
import sys
import threading

import socketio

lock = threading.Lock()


def out(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


sio = None


def make_client(cmd):
    client = socketio.Client(reconnection=cmd.get("reconnection", False),
                             reconnection_delay=0.1, reconnection_delay_max=0.3)

    @client.event
    def connect():
        out({"type": "connected", "sid": client.get_sid(), "transport": client.transport()})

    @client.event
    def connect_error(data):
        message = data.get("message") if isinstance(data, dict) else data
        out({"type": "connect_error", "message": message})

    @client.event
    def disconnect(reason=None):
        out({"type": "disconnect", "reason": str(reason)})

    @client.on("*")
    def any_event(event, data=None):
        out({"type": "event", "event": event, "data": data})

    return client


def main():
    global sio
    out({"type": "ready", "client": "python-socketio"})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "connect":
                sio = make_client(cmd)
                auth = {} if cmd.get("token") is None else {"token": cmd["token"]}
                headers = {"Origin": cmd["origin"]} if cmd.get("origin") else {}
                try:
                    sio.connect(cmd["url"], auth=auth, headers=headers,
                                transports=cmd.get("transports", ["polling", "websocket"]),
                                wait_timeout=5)
                except socketio.exceptions.ConnectionError as err:
                    out({"type": "connect_failed", "message": str(err)})
            elif cmd["cmd"] == "emit":
                data = sio.call(cmd["event"], cmd.get("data"), timeout=cmd.get("timeoutMs", 5000) / 1000)
                out({"type": "ack", "id": cmd.get("id"), "data": data})
            elif cmd["cmd"] == "disconnect":
                sio.disconnect()
            elif cmd["cmd"] == "exit":
                break
        except Exception as err:  # reported to the test, which decides
            out({"type": "error", "id": cmd.get("id"), "message": repr(err)})
    if sio is not None:
        try:
            sio.disconnect()
        except Exception:
            pass


if __name__ == "__main__":
    main()
