#!/usr/bin/env python3
"""fake_server.py PORT MODE - a misbehaving upstream on 127.0.0.1:PORT.

  MODE greet      send "220 hello\\r\\n", never speak TLS, read and discard
  MODE silent     accept, send nothing, read and discard
  MODE blackhole  listen but never accept, and fill the accept queue so that
                  further connects hang (SYNs dropped): a connect timeout
Runs until killed.  Prints "ready" once it is listening (and, for blackhole,
once the queue is full).
"""
import socket
import sys
import threading
import time


def serve(conn, greet):
    try:
        if greet:
            conn.sendall(b"220 hello\r\n")
        while conn.recv(65536):
            pass
    except OSError:
        pass
    finally:
        conn.close()


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    if mode == "blackhole":
        ls.listen(0)
        hold = []
        for _ in range(16):
            c = socket.socket()
            c.settimeout(0.5)
            try:
                c.connect(("127.0.0.1", port))
                hold.append(c)
            except OSError:
                c.close()
                break
        else:
            print("could not fill the accept queue", flush=True)
            return 1
        print("ready", flush=True)
        while True:
            time.sleep(3600)
    ls.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, mode == "greet"),
                         daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
